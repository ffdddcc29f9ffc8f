//! A cached answer: the statement class (a byte, for metrics on hits)
//! followed by the RowDescription, DataRow and CommandComplete messages
//! exactly as the responder encoded them on the miss. Replaying decodes
//! them and sends them through the responder again, which applies the
//! same protocol rules as the miss (no RowDescription after Describe in
//! the extended protocol, portal row limits), so the client receives the
//! same bytes.

use bytes::{Buf, Bytes, BytesMut};

use crate::metrics::StatementClass;
use crate::proxy::backend::BackendMessage;
use crate::wire::{PgError, Responder};

/// Prepends the class to recorded messages.
pub fn encode(class: StatementClass, messages: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(messages.len() + 1);
    let i = StatementClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or(0);
    b.extend_from_slice(&[i as u8]);
    b.extend_from_slice(messages);
    b.freeze()
}

/// The class and messages of an entry; `None` if it is malformed (an L2
/// value written by something else).
fn decode(entry: &Bytes) -> Option<(StatementClass, Vec<BackendMessage>)> {
    let class = *StatementClass::ALL.get(usize::from(*entry.first()?))?;
    let mut rest = entry.slice(1..);
    let mut messages = Vec::new();
    while rest.has_remaining() {
        if rest.len() < 5 {
            return None;
        }
        let tag = rest.get_u8();
        let len = usize::try_from(rest.get_i32()).ok()?.checked_sub(4)?;
        if rest.len() < len {
            return None;
        }
        let body = rest.split_to(len);
        let m = BackendMessage::decode(tag, body).ok()?;
        match m {
            BackendMessage::RowDescription(_)
            | BackendMessage::DataRow(_)
            | BackendMessage::CommandComplete(_) => messages.push(m),
            _ => return None,
        }
    }
    Some((class, messages))
}

/// Sends a cached answer; `Ok(None)` when the entry is malformed (nothing
/// was sent).
pub async fn replay(
    entry: &Bytes,
    out: &mut Responder<'_>,
) -> Result<Option<StatementClass>, PgError> {
    let Some((class, messages)) = decode(entry) else {
        return Ok(None);
    };
    for m in messages {
        match m {
            BackendMessage::RowDescription(fields) => out.row_description(&fields),
            BackendMessage::DataRow(row) => out.data_row(row).await?,
            BackendMessage::CommandComplete(tag) => out.complete(&tag),
            _ => {}
        }
    }
    Ok(Some(class))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_entries_are_refused() {
        assert!(decode(&Bytes::from_static(b"")).is_none());
        assert!(decode(&Bytes::from_static(b"\x09")).is_none());
        assert!(decode(&Bytes::from_static(b"\x00C\x00\x00\x00\x02")).is_none());
        let mut ok = BytesMut::new();
        crate::wire::backend::command_complete(&mut ok, "SELECT 0");
        let (class, m) = decode(&encode(StatementClass::Knn, &ok)).unwrap();
        assert_eq!(class, StatementClass::Knn);
        assert!(matches!(&m[..], [BackendMessage::CommandComplete(t)] if t == "SELECT 0"));
    }
}
