//! A small bounded map from statement text to what the proxy worked out
//! about it (its parse, its Describe answer), so a statement a client
//! sends again and again is not worked out again each time. The map
//! starts over when full: statements worth remembering are few and hot.
//!
//! Looked up with every statement's text, so hashed with foldhash rather
//! than SipHash (still with a random seed per process, so texts cannot be
//! chosen beforehand to collide).

use std::sync::{Arc, Mutex};

use foldhash::HashMap;

/// Statement text → a remembered value, at most `capacity` of them.
#[derive(Debug)]
pub struct TextMemo<V> {
    capacity: usize,
    entries: Mutex<HashMap<String, Arc<V>>>,
}

impl<V> TextMemo<V> {
    /// An empty memo holding at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        TextMemo {
            capacity,
            entries: Mutex::new(HashMap::default()),
        }
    }

    /// The value remembered for `text`.
    pub fn get(&self, text: &str) -> Option<Arc<V>> {
        self.lock().get(text).cloned()
    }

    /// Remembers `value` for `text`; returns it shared.
    pub fn insert(&self, text: &str, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let mut entries = self.lock();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(text.to_string(), Arc::clone(&value));
        value
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_until_cleared_or_full() {
        let memo = TextMemo::new(2);
        memo.insert("a", 1);
        memo.insert("b", 2);
        assert_eq!(memo.get("a").as_deref(), Some(&1));
        memo.insert("c", 3);
        assert!(memo.get("a").is_none(), "a full memo starts over");
        assert_eq!(memo.get("c").as_deref(), Some(&3));
        memo.clear();
        assert!(memo.get("c").is_none());
    }
}
