//! `Seen`: credentials a route already verified, by their own bytes, in one worker's view
//! of one route (no lock; a reload builds a new view, and with it an empty table). Used for
//! verified JWTs (`jwt.rs`) and admitted API keys (`authn.rs`): a repeat request costs one
//! FxHash of the credential and one comparison of its bytes, not a signature check or a
//! SHA-256.
//!
//! Only credentials that passed are ever inserted, so a client cannot fill the table, nor
//! pick colliding keys for it: it does not know the valid credentials' hashes. At most
//! [`ENTRIES`]; when full, expired entries go first (the caller says which are live), then
//! an eighth, whichever come first.

use std::cell::RefCell;

/// Credentials kept per route and worker.
pub(crate) const ENTRIES: usize = 1024;

pub(crate) struct Seen<V> {
    map: RefCell<rustc_hash::FxHashMap<Box<[u8]>, V>>,
}

impl<V: Clone> Seen<V> {
    /// What `credential` gave when it was verified, if it was.
    pub(crate) fn get(&self, credential: &[u8]) -> Option<V> {
        let map = self.map.borrow();
        if map.is_empty() {
            return None;
        }
        map.get(credential).cloned()
    }

    /// Keeps `credential`'s verdict; `live` tells which entries may stay when the table is
    /// full.
    pub(crate) fn put(&self, credential: &[u8], v: V, live: impl Fn(&V) -> bool) {
        let mut map = self.map.borrow_mut();
        if map.len() >= ENTRIES {
            map.retain(|_, e| live(e));
        }
        if map.len() >= ENTRIES {
            let drop: Vec<Box<[u8]>> = map.keys().take(ENTRIES / 8).cloned().collect();
            for k in drop {
                map.remove(&k);
            }
        }
        map.insert(credential.into(), v);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.borrow().len()
    }
}

impl<V> Default for Seen<V> {
    fn default() -> Self {
        Seen {
            map: RefCell::default(),
        }
    }
}

impl<V> Clone for Seen<V> {
    /// A copy of a stage starts with an empty table.
    fn clone(&self) -> Self {
        Seen::default()
    }
}

impl<V> PartialEq for Seen<V> {
    /// The table is not configuration.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<V> std::fmt::Debug for Seen<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seen({})", self.map.borrow().len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_expired_first() {
        let seen: Seen<u64> = Seen::default();
        for i in 0..ENTRIES as u64 {
            seen.put(&i.to_le_bytes(), i, |_| true);
        }
        assert_eq!(seen.len(), ENTRIES);
        assert_eq!(seen.get(&7u64.to_le_bytes()), Some(7));
        // Full: the entries `live` refuses go, and nothing else.
        seen.put(b"new", 1, |v| *v >= 10);
        assert_eq!(seen.len(), ENTRIES - 10 + 1);
        assert_eq!(seen.get(&7u64.to_le_bytes()), None);
        assert_eq!(seen.get(&10u64.to_le_bytes()), Some(10));
        // Full of live entries: an eighth goes.
        for i in 0..9u64 {
            seen.put(&(5000 + i).to_le_bytes(), i, |_| true);
        }
        seen.put(b"one more", 0, |_| true);
        assert!(seen.len() <= ENTRIES - ENTRIES / 8 + 1, "{}", seen.len());
        assert_eq!(seen.get(b"one more"), Some(0));
    }
}
