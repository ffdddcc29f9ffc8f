//! The slot map recorded in the proxy's data directory. Rows live on the
//! shard their key's slot mapped to when they were written, so the map
//! must not change under them: the first start writes it to
//! `<data_dir>/slot-map.yaml`, and every later start uses the recorded
//! map, refusing one in the configuration that differs (moving slots
//! would strand rows on the wrong shard).

use std::collections::BTreeMap;
use std::path::Path;

use super::config::{ConfigError, ProxyConfig, SlotRange};
use super::slots::SlotMap;

/// The file name inside the data directory.
pub const FILE: &str = "slot-map.yaml";

type Ranges = BTreeMap<String, Vec<SlotRange>>;

fn error(path: &Path, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.display().to_string(),
        problem: problem.into(),
    }
}

/// The map as ranges per shard name.
fn ranges(config: &ProxyConfig) -> Ranges {
    let map = SlotMap::from_config(config);
    let mut out = Ranges::new();
    let mut start = 0usize;
    for slot in 1..=super::slots::SLOTS {
        let owner = map.owner_of(start);
        if slot == super::slots::SLOTS || map.owner_of(slot) != owner {
            out.entry(config.shards[owner].name.clone())
                .or_default()
                .push(SlotRange(start as u16, (slot - 1) as u16));
            start = slot;
        }
    }
    out
}

/// Makes `config.slots` the recorded map (recording it on the first
/// start). Without a data directory nothing is recorded.
pub fn settle(config: &mut ProxyConfig) -> Result<(), ConfigError> {
    let Some(dir) = config.data_dir.clone() else {
        return Ok(());
    };
    let path = dir.join(FILE);
    let wanted = ranges(config);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let recorded: Ranges = serde_norway::from_str(&text)
                .map_err(|e| error(&path, format!("unreadable slot map: {e}")))?;
            if config.slots.is_some() && recorded != wanted {
                return Err(error(
                    &path,
                    "the configuration's slots differ from the map recorded here when the data was written; \
                     remove `slots` from the configuration to use the recorded map",
                ));
            }
            config.slots = Some(recorded);
            config.validate().map_err(|e| {
                error(
                    &path,
                    format!("the recorded slot map does not fit the configured shards ({e}); keep the shard names it was written with"),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&dir).map_err(|e| error(&dir, e.to_string()))?;
            let text = format!(
                "# pgvshard slot map: hash slot ranges [first, last] per shard.\n\
                 # Written on the first start; do not edit (rows were placed by it).\n{}",
                serde_norway::to_string(&wanted).map_err(|e| error(&path, e.to_string()))?
            );
            let tmp = dir.join(format!("{FILE}.tmp"));
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, &path))
                .map_err(|e| error(&path, format!("cannot record the slot map: {e}")))?;
            config.slots = Some(wanted);
            Ok(())
        }
        Err(e) => Err(error(&path, format!("cannot read: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, shards: usize) -> ProxyConfig {
        let names: String = (0..shards)
            .map(|i| format!("  - name: s{i}\n    kind: embedded\n"))
            .collect();
        ProxyConfig::from_yaml(&format!("data_dir: {}\nshards:\n{names}", dir.display())).unwrap()
    }

    #[test]
    fn recorded_on_first_start_and_kept_after() {
        let dir = std::env::temp_dir().join(format!("pgvshard-slots-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let mut first = config(&dir, 4);
        settle(&mut first).unwrap();
        let written = first.slots.clone().unwrap();
        assert_eq!(written["s0"], vec![SlotRange(0, 1023)]);
        assert_eq!(written["s3"], vec![SlotRange(3072, 4095)]);
        let mut again = config(&dir, 4);
        settle(&mut again).unwrap();
        assert_eq!(again.slots, Some(written.clone()));
        assert_eq!(
            SlotMap::from_config(&again).shard_of("42"),
            SlotMap::from_config(&first).shard_of("42")
        );
        let mut moved = config(&dir, 4);
        moved.slots = Some(ranges(&config(&dir, 2)));
        let e = settle(&mut moved).unwrap_err();
        assert!(e.problem.contains("differ"), "{e}");
        let mut fewer = config(&dir, 2);
        let e = settle(&mut fewer).unwrap_err();
        assert!(e.problem.contains("does not fit"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
