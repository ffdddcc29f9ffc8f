//! Running one request on a set of shards: bring each channel to the
//! session's pgvector settings, send, and read each shard's reply as a
//! [`ShardStream`] of raw rows.

use crate::proxy::backend::{
    next_message, run_simple, BackendMessage, ChannelSettings, OidMap, Request, ShardChannel,
};
use crate::wire::{guc, DataRow, FieldDescription, PgError, Session};

/// Settings every shard must see as the session has them.
fn forwarded(name: &str) -> bool {
    name.starts_with("hnsw.") || name.starts_with("ivfflat.")
}

/// The registry's [`forwarded`] parameters, found once.
static FORWARDED: std::sync::LazyLock<Vec<&'static guc::Guc>> =
    std::sync::LazyLock::new(|| guc::GUCS.iter().filter(|g| forwarded(g.name)).collect());

/// Applies the session's forwarded settings to a channel with one round
/// trip, only when the channel's values differ (a fresh connection has
/// pgvector's defaults, which are the registry's). Runs before every
/// statement, so the check allocates nothing, and is skipped when the
/// channel was last brought to this very version of the settings.
pub async fn sync_settings(chan: &mut dyn ShardChannel, session: &Session) -> Result<(), PgError> {
    let version = session.settings_version();
    let current = chan.settings();
    if current.synced == Some(version) {
        return Ok(());
    }
    // Settings changed behind the record are reset first, in the same
    // round trip, and compared from their defaults.
    let reset = current.unknown;
    let changes: Vec<(String, String)> = FORWARDED
        .iter()
        .filter(|g| {
            let had = match reset {
                true => g.default,
                false => current.values.get(g.name).map_or(g.default, String::as_str),
            };
            had != session.value(g)
        })
        .map(|g| (g.name.to_string(), session.value(g).to_string()))
        .collect();
    if changes.is_empty() && !reset {
        current.synced = Some(version);
        return Ok(());
    }
    let sets = changes
        .iter()
        .map(|(n, v)| format!("SET {n} = '{}'", v.replace('\'', "''")));
    let sql: Vec<String> = reset
        .then(|| "RESET ALL".to_string())
        .into_iter()
        .chain(sets)
        .collect();
    run_simple(chan, &sql.join("; ")).await?;
    let current = chan.settings();
    *current = ChannelSettings::default();
    current.values.extend(changes);
    current.synced = Some(version);
    Ok(())
}

/// Refuses replies whose columns differ between shards (a schema change
/// that applied on some shards only): their rows cannot be sent under one
/// RowDescription. Compares the described streams' column types with the
/// first one's, without allocating unless they differ.
pub fn check_same_columns(streams: &[ShardStream]) -> Result<(), PgError> {
    let mut described = streams
        .iter()
        .filter_map(|s| s.columns.as_deref().map(|c| (s.shard, c)));
    let Some((first_shard, first)) = described.next() else {
        return Ok(());
    };
    let oids = |c: &[FieldDescription]| c.iter().map(|f| f.type_oid).collect::<Vec<_>>();
    for (shard, columns) in described {
        let same = columns
            .iter()
            .map(|f| f.type_oid)
            .eq(first.iter().map(|f| f.type_oid));
        if !same {
            return Err(PgError::new(
                "42804",
                format!(
                    "shards answered with different columns: shard {first_shard} {:?}, shard {shard} {:?} (type OIDs)",
                    oids(first),
                    oids(columns)
                ),
            )
            .with_hint("A schema change applied on some shards only: run it again with IF [NOT] EXISTS so every shard has the same schema."));
        }
    }
    Ok(())
}

/// One shard's reply, read row by row.
pub struct ShardStream {
    /// Index of the shard.
    pub shard: usize,
    /// The channel the reply arrives on.
    pub chan: Box<dyn ShardChannel>,
    oids: OidMap,
    /// Result columns (type OIDs already the proxy's), once described.
    pub columns: Option<Vec<FieldDescription>>,
    /// Parameter types of a Describe (the proxy's OIDs).
    pub param_types: Vec<u32>,
    /// The CommandComplete tag.
    pub tag: Option<String>,
    /// Notices the shard sent.
    pub notices: Vec<PgError>,
    error: Option<PgError>,
    done: bool,
}

impl ShardStream {
    /// A stream over a channel whose request was just sent.
    pub fn new(shard: usize, chan: Box<dyn ShardChannel>, oids: OidMap) -> Self {
        ShardStream {
            shard,
            chan,
            oids,
            columns: None,
            param_types: Vec::new(),
            tag: None,
            notices: Vec::new(),
            error: None,
            done: false,
        }
    }

    /// A stream over a channel that was sent nothing (a route that ended
    /// before its turn): done, so the channel goes back as it was.
    pub fn unused(shard: usize, chan: Box<dyn ShardChannel>, oids: OidMap) -> Self {
        ShardStream {
            done: true,
            ..ShardStream::new(shard, chan, oids)
        }
    }

    /// True once the reply was read to its ReadyForQuery: the channel is
    /// ready for another request.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The shard's type OIDs.
    pub fn oids(&self) -> OidMap {
        self.oids
    }

    /// Sends another request on the same channel (after this reply ended)
    /// and reads its reply from the start.
    pub async fn restart(&mut self, request: &Request<'_>) -> Result<(), PgError> {
        self.chan.send(request).await?;
        self.columns = None;
        self.tag = None;
        self.notices.clear();
        self.done = false;
        Ok(())
    }

    /// The next row; `None` once the reply ended. A shard's error is
    /// returned after its ReadyForQuery, so the channel stays usable.
    pub async fn next_row(&mut self) -> Result<Option<DataRow>, PgError> {
        while !self.done {
            match next_message(self.chan.as_mut()).await? {
                BackendMessage::RowDescription(mut fields) => {
                    for f in &mut fields {
                        f.type_oid = self.oids.to_client(f.type_oid);
                    }
                    self.columns = Some(fields);
                }
                BackendMessage::ParameterDescription(types) => {
                    self.param_types = types.into_iter().map(|t| self.oids.to_client(t)).collect();
                }
                BackendMessage::NoData => self.columns = Some(Vec::new()),
                BackendMessage::DataRow(row) => return Ok(Some(row)),
                BackendMessage::CommandComplete(tag) => self.tag = Some(tag),
                BackendMessage::EmptyQuery => self.tag = None,
                BackendMessage::Error(e) => self.error = self.error.take().or(Some(e)),
                BackendMessage::Notice(n) => self.notices.push(n),
                BackendMessage::ReadyForQuery(_) => self.done = true,
                BackendMessage::CopyIn | BackendMessage::CopyOut => {
                    self.error = Some(PgError::feature_not_supported(
                        "COPY cannot be part of another statement through the proxy",
                    ));
                }
                _ => {}
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Reads the rest of the reply, keeping nothing but the tag.
    pub async fn finish(&mut self) -> Result<(), PgError> {
        while self.next_row().await?.is_some() {}
        Ok(())
    }

    /// Reads the whole reply into memory (for small results: partial
    /// aggregates, RETURNING rows, plans).
    pub async fn collect(&mut self) -> Result<Vec<DataRow>, PgError> {
        let mut rows = Vec::new();
        while let Some(row) = self.next_row().await? {
            rows.push(row);
        }
        Ok(rows)
    }
}

/// The row count of a CommandComplete tag (`INSERT 0 3` → 3).
pub fn tag_count(tag: &str) -> Option<u64> {
    tag.rsplit(' ').next().and_then(|n| n.parse().ok())
}

/// One tag for a statement that ran on several shards: the first tag's
/// words with the counts added up.
pub fn combined_tag(tags: &[String]) -> Option<String> {
    let first = tags.first()?;
    let total: u64 = tags.iter().filter_map(|t| tag_count(t)).sum();
    match tag_count(first) {
        Some(_) => {
            let head = first.rsplit_once(' ').map_or("", |(h, _)| h);
            Some(format!("{head} {total}"))
        }
        None => Some(first.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_add_up() {
        let tags = ["INSERT 0 2".to_string(), "INSERT 0 3".to_string()];
        assert_eq!(combined_tag(&tags).unwrap(), "INSERT 0 5");
        assert_eq!(
            combined_tag(&["CREATE TABLE".to_string(), "CREATE TABLE".to_string()]).unwrap(),
            "CREATE TABLE"
        );
        assert_eq!(
            combined_tag(&["UPDATE 1".into(), "UPDATE 0".into()]).unwrap(),
            "UPDATE 1"
        );
        assert_eq!(combined_tag(&[]), None);
    }
}
