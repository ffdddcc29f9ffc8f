//! The replication protocol's pieces, as PostgreSQL's physical streaming
//! replication has them: the commands of a replication connection and the
//! messages inside copy-both mode. Integers are big-endian; times are
//! microseconds since 2000-01-01 UTC.
//!
//! ```text
//! primary → standby   'w' XLogData   start u64 | end u64 | time i64 | WAL bytes
//!                     'k' keepalive  end u64 | time i64 | reply requested u8
//! standby → primary   'r' status     write u64 | flush u64 | apply u64 | time i64 | reply u8
//!                     'h' hot standby feedback (ignored)
//! ```
//!
//! The WAL bytes are pgvshard's own frames (see `storage::wal`), whole
//! frames only; an LSN is a byte position in that stream.

use crate::shard::storage::Lsn;
use crate::wire::{sqlstate, PgError};

/// A command on a replication connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `IDENTIFY_SYSTEM`.
    IdentifySystem,
    /// `START_REPLICATION [SLOT s] [PHYSICAL] X/X [TIMELINE t]`.
    StartReplication {
        /// Where streaming starts.
        start: Lsn,
        /// The timeline asked for, if named.
        timeline: Option<u32>,
    },
    /// `BASE_BACKUP [(…)]`: a checkpoint's files (options are ignored).
    BaseBackup,
    /// `TIMELINE_HISTORY t`: where the timelines before `t` ended.
    TimelineHistory(u32),
}

fn syntax(sql: &str) -> PgError {
    PgError::new(
        sqlstate::SYNTAX_ERROR,
        format!("syntax error in replication command: \"{}\"", sql.trim()),
    )
}

/// Parses a replication command; SQL gets PostgreSQL's refusal.
pub fn parse_command(sql: &str) -> Result<Command, PgError> {
    let text = sql.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    match upper.first().map(String::as_str) {
        Some("IDENTIFY_SYSTEM") if words.len() == 1 => Ok(Command::IdentifySystem),
        Some("BASE_BACKUP") => Ok(Command::BaseBackup),
        Some("TIMELINE_HISTORY") if words.len() == 2 => words[1]
            .parse()
            .map(Command::TimelineHistory)
            .map_err(|_| syntax(sql)),
        Some("START_REPLICATION") => {
            let mut i = 1;
            if upper.get(i).map(String::as_str) == Some("SLOT") {
                i += 2;
            }
            if upper.get(i).map(String::as_str) == Some("PHYSICAL") {
                i += 1;
            }
            let start = words
                .get(i)
                .and_then(|w| parse_lsn(w))
                .ok_or_else(|| syntax(sql))?;
            i += 1;
            let timeline = match upper.get(i).map(String::as_str) {
                None => None,
                Some("TIMELINE") => Some(
                    words
                        .get(i + 1)
                        .and_then(|t| t.parse().ok())
                        .ok_or_else(|| syntax(sql))?,
                ),
                Some(_) => return Err(syntax(sql)),
            };
            Ok(Command::StartReplication { start, timeline })
        }
        Some(
            "IDENTIFY_SYSTEM"
            | "TIMELINE_HISTORY"
            | "CREATE_REPLICATION_SLOT"
            | "DROP_REPLICATION_SLOT"
            | "READ_REPLICATION_SLOT"
            | "ALTER_REPLICATION_SLOT",
        ) => Err(PgError::feature_not_supported(format!(
            "replication command is not supported: {text}"
        ))),
        _ => Err(PgError::feature_not_supported(
            "cannot execute SQL commands in WAL sender for physical replication",
        )),
    }
}

/// Parses PostgreSQL's `X/X` LSN text.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some(Lsn((u64::from(hi) << 32) | u64::from(lo)))
}

/// Now in PostgreSQL's timestamp form (µs since 2000-01-01 UTC).
pub use crate::wire::datetime::now as pg_now;

/// A message inside copy-both mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMessage {
    /// 'w': WAL from `start`; the sender's durable position is `end`.
    XLogData {
        /// LSN of the first byte.
        start: Lsn,
        /// The sender's WAL end.
        end: Lsn,
        /// When it was sent.
        time: i64,
        /// Whole WAL frames.
        data: bytes::Bytes,
    },
    /// 'k': the sender's WAL end; a reply is wanted at once if asked.
    Keepalive {
        /// The sender's WAL end.
        end: Lsn,
        /// When it was sent.
        time: i64,
        /// Reply now.
        reply: bool,
    },
    /// 'r': how far the standby has written, flushed and applied.
    Status(StandbyStatus),
    /// 'h': hot standby feedback.
    Feedback,
}

/// A standby status update's positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StandbyStatus {
    /// Received and written.
    pub write: Lsn,
    /// Durable on the standby.
    pub flush: Lsn,
    /// Applied (visible to reads on the standby).
    pub apply: Lsn,
    /// When the standby sent it.
    pub time: i64,
    /// The standby asks for a keepalive back.
    pub reply: bool,
}

fn truncated() -> PgError {
    PgError::protocol_violation("truncated replication message")
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, PgError> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(truncated)
}

impl StreamMessage {
    /// Encodes the message as a CopyData payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            StreamMessage::XLogData {
                start,
                end,
                time,
                data,
            } => {
                b.reserve(25 + data.len());
                b.push(b'w');
                b.extend_from_slice(&start.0.to_be_bytes());
                b.extend_from_slice(&end.0.to_be_bytes());
                b.extend_from_slice(&time.to_be_bytes());
                b.extend_from_slice(data);
            }
            StreamMessage::Keepalive { end, time, reply } => {
                b.push(b'k');
                b.extend_from_slice(&end.0.to_be_bytes());
                b.extend_from_slice(&time.to_be_bytes());
                b.push(u8::from(*reply));
            }
            StreamMessage::Status(s) => {
                b.push(b'r');
                for v in [s.write.0, s.flush.0, s.apply.0] {
                    b.extend_from_slice(&v.to_be_bytes());
                }
                b.extend_from_slice(&s.time.to_be_bytes());
                b.push(u8::from(s.reply));
            }
            StreamMessage::Feedback => b.push(b'h'),
        }
        b
    }

    /// Decodes a CopyData payload.
    pub fn decode(payload: bytes::Bytes) -> Result<StreamMessage, PgError> {
        let b = &payload[..];
        let flag = |at: usize| b.get(at).map(|&v| v != 0).ok_or_else(truncated);
        Ok(match b.first() {
            Some(b'w') => {
                if b.len() < 25 {
                    return Err(truncated());
                }
                StreamMessage::XLogData {
                    start: Lsn(u64_at(b, 1)?),
                    end: Lsn(u64_at(b, 9)?),
                    time: u64_at(b, 17)? as i64,
                    data: payload.slice(25..),
                }
            }
            Some(b'k') => StreamMessage::Keepalive {
                end: Lsn(u64_at(b, 1)?),
                time: u64_at(b, 9)? as i64,
                reply: flag(17)?,
            },
            Some(b'r') => StreamMessage::Status(StandbyStatus {
                write: Lsn(u64_at(b, 1)?),
                flush: Lsn(u64_at(b, 9)?),
                apply: Lsn(u64_at(b, 17)?),
                time: u64_at(b, 25)? as i64,
                reply: flag(33)?,
            }),
            Some(b'h') => StreamMessage::Feedback,
            _ => {
                return Err(PgError::protocol_violation(
                    "unexpected message type in replication stream",
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_postgres_writes_them() {
        assert_eq!(
            parse_command("START_REPLICATION SLOT s PHYSICAL 0/16B3748 TIMELINE 1").unwrap(),
            Command::StartReplication {
                start: Lsn(0x16B3748),
                timeline: Some(1)
            }
        );
        assert_eq!(
            parse_command("start_replication 1/0").unwrap(),
            Command::StartReplication {
                start: Lsn(1 << 32),
                timeline: None
            }
        );
        assert_eq!(
            parse_command("IDENTIFY_SYSTEM;").unwrap(),
            Command::IdentifySystem
        );
        assert_eq!(parse_command("SELECT 1").unwrap_err().code, "0A000");
        assert_eq!(
            parse_command("START_REPLICATION x").unwrap_err().code,
            "42601"
        );
    }

    #[test]
    fn stream_messages_round_trip() {
        for m in [
            StreamMessage::XLogData {
                start: Lsn(5),
                end: Lsn(9),
                time: 7,
                data: bytes::Bytes::from_static(b"abcd"),
            },
            StreamMessage::Keepalive {
                end: Lsn(3),
                time: -1,
                reply: true,
            },
            StreamMessage::Status(StandbyStatus {
                write: Lsn(1),
                flush: Lsn(2),
                apply: Lsn(3),
                time: 4,
                reply: false,
            }),
        ] {
            assert_eq!(StreamMessage::decode(m.encode().into()).unwrap(), m);
        }
        assert!(StreamMessage::decode(bytes::Bytes::from_static(b"w12")).is_err());
    }
}
