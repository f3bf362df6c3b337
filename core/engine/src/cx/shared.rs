//! State the workers share for the whole process: the token buckets, breaker counters, retry
//! budgets, outlier and health marks that a configuration asks to hold across workers.
//!
//! Workers own everything else (`Rc`, `Cell`). What a limit "for the whole process" needs is
//! one value every worker sees: a [`Registry`] hands out one `Arc` per key, made on first
//! use and found again by every other worker. It is taken only when a worker builds its view
//! of a snapshot (`pipeline/view.rs`), never per request; per request a worker touches the
//! value's atomics only (relaxed loads, and one read-modify-write where a limit counts).
//!
//! A key names what the state is for and the configuration it was made from (a stage's
//! settings, a cluster's fingerprint): a reload that keeps them keeps the state (a bucket's
//! tokens, an ejection), and one that changes them starts afresh. The registry holds weak
//! references: state that no view uses any more goes with the last view.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// One process's shared state, by key.
#[derive(Default)]
pub struct Registry {
    map: Mutex<HashMap<String, Weak<dyn Any + Send + Sync>>>,
}

impl Registry {
    /// The value under `key`, made by `init` when no live one exists. A key holds one type:
    /// the same key asked for as another type gets a fresh value, not the other's.
    pub(crate) fn get<T: Any + Send + Sync>(&self, key: &str, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = map
            .get(key)
            .and_then(Weak::upgrade)
            .and_then(|any| any.downcast::<T>().ok())
        {
            return found;
        }
        // Something new goes in: a good moment to forget what nothing uses any more.
        map.retain(|_, w| w.strong_count() > 0);
        let value = Arc::new(init());
        let any: Arc<dyn Any + Send + Sync> = value.clone();
        map.insert(key.to_owned(), Arc::downgrade(&any));
        value
    }

    /// The live value under `key`, if there is one of type `T` (for readers such as the
    /// admin endpoint, which must not make state that nothing uses).
    pub(crate) fn find<T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .and_then(Weak::upgrade)
            .and_then(|any| any.downcast::<T>().ok())
    }

    /// How many values are alive whose key starts with `kind` (`"ratelimit/"`, `"breaker/"`,
    /// `"retry-budget/"`, `"health/"`; `""`: all).
    pub(crate) fn live(&self, kind: &str) -> usize {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(k, w)| k.starts_with(kind) && w.strong_count() > 0)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn one_value_per_key_while_someone_holds_it() {
        let r = Registry::default();
        let a = r.get("bucket/in/api", || AtomicU32::new(5));
        a.store(7, Ordering::Relaxed);
        let b = r.get("bucket/in/api", || AtomicU32::new(5));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(b.load(Ordering::Relaxed), 7);
        let other = r.get("bucket/in/web", || AtomicU32::new(5));
        assert!(r
            .find::<AtomicU32>("bucket/in/api")
            .is_some_and(|f| Arc::ptr_eq(&f, &a)));
        assert!(r.find::<String>("bucket/in/api").is_none(), "another type");
        assert!(r.find::<AtomicU32>("bucket/in/nothing").is_none());
        assert_eq!(other.load(Ordering::Relaxed), 5);
        assert_eq!(r.live(""), 2);
        drop((a, b));
        assert_eq!(r.live(""), 1);
        // Nobody held it: it starts afresh.
        assert_eq!(
            r.get("bucket/in/api", || AtomicU32::new(5))
                .load(Ordering::Relaxed),
            5
        );
        // Another type under the same key is a value of its own.
        let s = r.get("bucket/in/web", || String::from("x"));
        assert_eq!(*s, "x");
    }
}
