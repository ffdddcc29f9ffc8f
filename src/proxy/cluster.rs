//! Where a statement goes: the shards behind the proxy, the slot map, the
//! reference tables (kept whole on every shard, as configured) and each
//! sharded table's shard key — configured, or learned from the table's
//! primary key in the first shard's catalog (cached until DDL touches the
//! table). Key values come from literals or bound parameters; a value the
//! proxy cannot read leaves a read on every shard and refuses a write.
//! A table with neither is spread: its writes take turns over the shards
//! ([`Cluster::spread_shard`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::backend::{BackendMessage, Request, ShardChannel, SharedBackend};
use super::cache::RedisLink;
use super::config::ProxyConfig;
use super::generated_keys::KeySequences;
use super::slots::SlotMap;
use super::topology::Topology;
use super::txn::TwoPhase;
use crate::sql::{KeyValue, TableName};
use crate::wire::{Format, Params, PgError, Value};

/// A table's key and columns, as routing needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// The shard key column, if the table has one.
    pub key: Option<String>,
    /// Column names in table order (for INSERT without a column list).
    pub columns: Vec<String>,
}

/// Everything the sessions share: shards, slots, table keys.
pub struct Cluster {
    /// Each shard's primary (its data-path pool), in slot-map order.
    pub shards: Vec<SharedBackend>,
    /// Slot → shard.
    pub slots: SlotMap,
    /// Counters of proxy-generated serial keys.
    pub keys: KeySequences,
    /// Each shard's primary and standbys: where reads may go.
    pub topology: Arc<Topology>,
    /// Two-phase commit across shards.
    pub two_phase: TwoPhase,
    configured: HashMap<String, String>,
    /// Reference tables as configured, `public.` left out.
    reference: HashSet<String>,
    /// Keyed by the name as written (`t` and `public.t` apart), looked up
    /// without formatting it.
    learned: Mutex<HashMap<TableName, Arc<TableInfo>>>,
    /// Writes to tables without a shard key so far: whose turn is next.
    spread_turn: AtomicUsize,
}

impl Cluster {
    /// A cluster over `shards` with the configuration's keys and slots;
    /// generated keys are reserved through `redis` when there is one;
    /// `two_phase` commits across shards.
    pub fn new(
        config: &ProxyConfig,
        shards: Vec<SharedBackend>,
        topology: Arc<Topology>,
        redis: Option<Arc<RedisLink>>,
        two_phase: TwoPhase,
    ) -> Self {
        Cluster {
            two_phase,
            shards,
            topology,
            slots: SlotMap::from_config(config),
            keys: KeySequences::new(redis),
            configured: config
                .tables
                .iter()
                .map(|(t, c)| (t.clone(), c.shard_key.clone()))
                .collect(),
            reference: config
                .reference_tables
                .iter()
                .map(|t| t.strip_prefix("public.").unwrap_or(t).to_string())
                .collect(),
            learned: Mutex::new(HashMap::new()),
            spread_turn: AtomicUsize::new(0),
        }
    }

    /// All shard indexes. Inserted one by one: collecting would first
    /// gather and sort them in a vector (this runs for most statements).
    pub fn all(&self) -> BTreeSet<usize> {
        let mut all = BTreeSet::new();
        all.extend(0..self.shards.len());
        all
    }

    /// Shard indexes, those not known to be down first (each group in
    /// index order): where a statement any shard can answer goes.
    pub fn serving_order(&self) -> Vec<usize> {
        let (up, down): (Vec<usize>, Vec<usize>) =
            (0..self.shards.len()).partition(|&i| self.shards[i].status().down.is_none());
        up.into_iter().chain(down).collect()
    }

    /// The shard whose turn it is to take rows of a table without a shard
    /// key (round-robin over the shards not known to be down; over all
    /// when every one is).
    pub fn spread_shard(&self) -> usize {
        let up: Vec<usize> = (0..self.shards.len())
            .filter(|&i| self.shards[i].status().down.is_none())
            .collect();
        let turn = self.spread_turn.fetch_add(1, Ordering::Relaxed);
        match up.is_empty() {
            true => turn % self.shards.len().max(1),
            false => up[turn % up.len()],
        }
    }

    /// The configured shard key of `table`, if any.
    pub fn configured_key(&self, table: &str) -> Option<&str> {
        self.configured.get(table).map(String::as_str)
    }

    /// Whether `table` is a reference table: kept whole on every shard.
    pub fn is_reference(&self, table: &TableName) -> bool {
        match table.schema.as_deref() {
            None | Some("public") => self.reference.contains(&table.name),
            Some(_) => self.reference.contains(&table.to_string()),
        }
    }

    /// Forgets what was learned about `table` (after DDL on it).
    pub fn forget(&self, table: &TableName) {
        self.keys.forget(table);
        self.learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(table);
    }

    /// The table's key and columns, from the cache or the first shard.
    pub async fn table(&self, table: &TableName) -> Result<Arc<TableInfo>, PgError> {
        if let Some(t) = self
            .learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(table)
        {
            return Ok(Arc::clone(t));
        }
        let Some(shard) = self.shards.first() else {
            return Ok(Arc::default());
        };
        let mut chan = shard.checkout().await?;
        self.learn_through(table, chan.as_mut()).await
    }

    /// Reads the table's key and columns from the first shard through
    /// `chan` (a transaction's own connection sees the tables it made)
    /// and remembers them until [`Cluster::forget`].
    pub async fn learn_through(
        &self,
        table: &TableName,
        chan: &mut dyn ShardChannel,
    ) -> Result<Arc<TableInfo>, PgError> {
        let info = catalog(chan, &table.to_string()).await?;
        Ok(self.remember(table, info))
    }

    /// Remembers `info` for `table` (the configured shard key, if any,
    /// overriding its key) until [`Cluster::forget`].
    pub fn remember(&self, table: &TableName, mut info: TableInfo) -> Arc<TableInfo> {
        let name = table.to_string();
        if let Some(key) = self
            .configured
            .get(&table.name)
            .or(self.configured.get(&name))
        {
            info.key = Some(key.clone());
        }
        let info = Arc::new(info);
        self.learned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.clone(), Arc::clone(&info));
        info
    }

    /// The shard owning one key value; `None` when a parameter's value
    /// cannot be read as text.
    pub fn shard_of(&self, value: &KeyValue, params: Option<&Params>) -> Option<usize> {
        key_text(value, params).map(|t| self.slots.shard_of(&t))
    }

    /// The shards owning any of `values`; `None` if one cannot be read.
    pub fn shards_of(
        &self,
        values: &[KeyValue],
        params: Option<&Params>,
    ) -> Option<BTreeSet<usize>> {
        values.iter().map(|v| self.shard_of(v, params)).collect()
    }
}

/// The key and columns of table `name` as the shard behind `chan` has them.
async fn catalog(chan: &mut dyn ShardChannel, name: &str) -> Result<TableInfo, PgError> {
    // One text both kinds of shard run over their system catalog.
    let sql = format!(
        "SELECT a.attname::text, COALESCE(a.attnum = i.indkey[0], false) \
         FROM pg_catalog.pg_attribute a \
         LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
         WHERE a.attrelid = '{}'::regclass AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
        name.replace('\'', "''")
    );
    let request = Request::Simple(sql);
    chan.send(&request).await?;
    let mut info = TableInfo::default();
    let mut error = None;
    loop {
        match chan.recv().await? {
            BackendMessage::DataRow(row) => {
                if let [Some(col), Some(is_key)] = super::backend::messages::fields(&row)?[..] {
                    let col = String::from_utf8_lossy(col).into_owned();
                    if is_key == b"t" && info.key.is_none() {
                        info.key = Some(col.clone());
                    }
                    info.columns.push(col);
                }
            }
            BackendMessage::Error(e) => error = Some(e),
            BackendMessage::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(info),
    }
}

/// The text of a key value: a literal as written, a parameter decoded
/// from its format. NULL routes nowhere in particular (`None`).
fn key_text(value: &KeyValue, params: Option<&Params>) -> Option<String> {
    match value {
        KeyValue::Literal(text) => Some(text.clone()),
        KeyValue::Param(n) => {
            let params = params?;
            let i = n.checked_sub(1)?;
            let bytes = params.values.get(i)?.as_ref()?;
            match params.formats.get(i).copied().unwrap_or_default() {
                Format::Text => std::str::from_utf8(bytes).ok().map(str::to_string),
                Format::Binary => binary_key_text(params.types.get(i).copied()?, bytes),
            }
        }
    }
}

/// The text of a key value sent in binary (the slot hash reads text).
pub(crate) fn binary_key_text(type_oid: u32, bytes: &[u8]) -> Option<String> {
    const UUID: u32 = 2950;
    if type_oid == UUID && bytes.len() == 16 {
        let h: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        return Some(format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        ));
    }
    Value::decode(type_oid, None, Format::Binary, bytes)
        .ok()
        .map(|v| v.to_text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::oid;
    use bytes::Bytes;

    #[test]
    fn parameters_hash_like_literals() {
        let params = Params {
            types: vec![oid::INT8, oid::INT4, 2950],
            formats: vec![Format::Binary, Format::Text, Format::Binary],
            values: vec![
                Some(Bytes::from(42i64.to_be_bytes().to_vec())),
                Some(Bytes::from_static(b"42")),
                Some(Bytes::from(vec![0xabu8; 16])),
            ],
        };
        let lit = key_text(&KeyValue::Literal("42".into()), None);
        assert_eq!(key_text(&KeyValue::Param(1), Some(&params)), lit);
        assert_eq!(key_text(&KeyValue::Param(2), Some(&params)), lit);
        assert_eq!(
            key_text(&KeyValue::Param(3), Some(&params)).unwrap(),
            "abababab-abab-abab-abab-abababababab"
        );
        assert_eq!(key_text(&KeyValue::Param(4), Some(&params)), None);
    }
}
