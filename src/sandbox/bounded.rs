//! What the sandbox has issued, kept so that a loop of requests cannot grow
//! it without bound: every entry expires, and each kind holds at most `CAP`
//! entries; when full, expired entries go first, then the one closest to
//! expiry (the oldest, as every kind has one lifetime; ties by arrival).

use std::collections::HashMap;

use crate::clock::UnixTime;

/// At most this many entries of each kind: far more than anyone clicks
/// through by hand, and a few hundred KiB at most.
pub const CAP: usize = 1000;

pub struct Bounded<V> {
    /// Each entry with when it expires and when it came (to break ties).
    entries: HashMap<String, (UnixTime, u64, V)>,
    inserted: u64,
}

impl<V> Default for Bounded<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            inserted: 0,
        }
    }
}

impl<V> Bounded<V> {
    /// Adds `value` under `key` until `expires_at`, making room if needed.
    pub fn insert(&mut self, key: String, value: V, expires_at: UnixTime, now: UnixTime) {
        if self.entries.len() >= CAP {
            self.entries.retain(|_, (expires, _, _)| *expires > now);
        }
        if self.entries.len() >= CAP {
            let soonest = self
                .entries
                .iter()
                .min_by_key(|(_, (expires, order, _))| (*expires, *order))
                .map(|(key, _)| key.clone());
            if let Some(soonest) = soonest {
                self.entries.remove(&soonest);
            }
        }
        self.inserted += 1;
        self.entries.insert(key, (expires_at, self.inserted, value));
    }

    /// The live entry under `key`.
    pub fn get_mut(&mut self, key: &str, now: UnixTime) -> Option<&mut V> {
        self.entries
            .get_mut(key)
            .filter(|(expires, _, _)| *expires > now)
            .map(|(_, _, value)| value)
    }

    pub fn contains(&self, key: &str, now: UnixTime) -> bool {
        self.entries
            .get(key)
            .is_some_and(|(expires, _, _)| *expires > now)
    }

    /// The keys of the live entries, oldest first.
    pub fn live_keys(&self, now: UnixTime) -> Vec<String> {
        let mut live: Vec<(u64, &String)> = self
            .entries
            .iter()
            .filter(|(_, (expires, _, _))| *expires > now)
            .map(|(key, (_, order, _))| (*order, key))
            .collect();
        live.sort_unstable();
        live.into_iter().map(|(_, key)| key.clone()).collect()
    }

    /// Takes the entry under `key` out; `None` if there is none or it expired.
    pub fn remove(&mut self, key: &str, now: UnixTime) -> Option<V> {
        self.entries
            .remove(key)
            .filter(|(expires, _, _)| *expires > now)
            .map(|(_, _, value)| value)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_of_inserts_stays_within_the_cap_and_keeps_the_newest() {
        let mut map = Bounded::default();
        for i in 0..10 * CAP as i64 {
            map.insert(format!("k{i}"), i, 1_000, 0);
            assert!(map.len() <= CAP);
        }
        let newest = 10 * CAP as i64 - 1;
        assert!(map.contains(&format!("k{newest}"), 0));
        assert!(!map.contains("k0", 0));
    }

    #[test]
    fn expired_entries_are_not_found_and_make_room_first() {
        let mut map = Bounded::default();
        map.insert("old".into(), (), 10, 0);
        assert!(map.contains("old", 9));
        assert!(!map.contains("old", 10));
        assert_eq!(map.remove("old", 10), None);
        for i in 0..CAP {
            map.insert(format!("short{i}"), (), 10, 0);
        }
        map.insert("late".into(), (), 1_000, 20);
        assert_eq!(map.len(), 1, "every expired entry went");
        assert!(map.get_mut("late", 20).is_some());
    }

    #[test]
    fn live_keys_come_oldest_first_without_the_expired() {
        let mut map = Bounded::default();
        for (key, expires) in [("b", 100), ("gone", 5), ("a", 50), ("c", 100)] {
            map.insert(key.into(), (), expires, 0);
        }
        assert_eq!(map.live_keys(10), ["b", "a", "c"]);
    }
}
