//! One worker's counts of its global limits' windows, without I/O: what a request is told
//! (admitted, or over the limit until the window ends), what the sync task sends to Redis,
//! and what it learns back.
//!
//! Each window key (`ringside:rl:<route>:<key>:<window>:<start>`) has three numbers here:
//! `known`, the window's global count as of this worker's last `INCRBY` reply; `inflight`,
//! what this worker sent and has no reply for yet; `unflushed`, what it admitted since. A
//! request is admitted while `known + inflight + unflushed < limit`. `known` only ever lags
//! the real count, so a request is never refused while the window is really under its limit;
//! the price is overshoot: what the workers admit between the moment the window fills and
//! the moment each learns it (docs/gateway.md, "Global rate limits").

use std::collections::HashMap;

/// The most window keys a worker keeps; a request for a new key beyond it is let through
/// uncounted (and counted as a fail-open decision), so clients cannot grow it without end.
pub(crate) const MAX_KEYS: usize = 65_536;

/// One window's counts in this worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    known: u64,
    inflight: u64,
    unflushed: u64,
    limit: u64,
    /// Unix seconds at which the window ends.
    ends: u64,
    /// Seconds Redis keeps the key after a write (two windows).
    ttl: u64,
}

/// What a request of a window was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Admitted. `flush`: the worker has admitted enough of this window since its last
    /// sync that the sync task should not wait for its interval.
    Yes { flush: bool },
    /// Over the limit: seconds until the window ends (at least 1).
    Over { reset_secs: u64 },
    /// The table is full: let through uncounted.
    Full,
}

/// A window's count to send: `INCRBY key n` then `EXPIRE key ttl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flush {
    pub(crate) key: Box<[u8]>,
    pub(crate) n: u64,
    pub(crate) ttl: u64,
}

/// The counts of every window this worker admitted requests to.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    /// SipHash with a random key (std's default), not Fx: the keys carry what clients send
    /// (header values), and must not be chosen to collide.
    counts: HashMap<Box<[u8]>, Count>,
    /// Keys with `unflushed > 0`.
    dirty: usize,
}

impl Windows {
    /// A request for window `key` (of `limit` requests, ending at unix second `ends`, of
    /// `window` seconds), at unix second `now`.
    pub(crate) fn admit(
        &mut self,
        key: &[u8],
        limit: u32,
        window: u32,
        ends: u64,
        now: u64,
    ) -> Admit {
        let limit = u64::from(limit.max(1));
        let count = match self.counts.get_mut(key) {
            Some(c) => c,
            None => {
                if self.counts.len() >= MAX_KEYS {
                    return Admit::Full;
                }
                self.counts.entry(key.into()).or_insert(Count {
                    known: 0,
                    inflight: 0,
                    unflushed: 0,
                    limit,
                    ends,
                    ttl: 2 * u64::from(window.max(1)),
                })
            }
        };
        if count.known + count.inflight + count.unflushed >= limit {
            return Admit::Over {
                reset_secs: count.ends.saturating_sub(now).max(1),
            };
        }
        if count.unflushed == 0 {
            self.dirty += 1;
        }
        count.unflushed += 1;
        Admit::Yes {
            flush: count.unflushed >= flush_at(limit),
        }
    }

    /// Whether any window has admitted requests not sent yet.
    pub(crate) fn dirty(&self) -> bool {
        self.dirty > 0
    }

    /// Moves every window's unflushed count in flight, and returns what to send.
    pub(crate) fn take(&mut self) -> Vec<Flush> {
        let mut out = Vec::with_capacity(self.dirty);
        for (key, c) in self.counts.iter_mut().filter(|(_, c)| c.unflushed > 0) {
            out.push(Flush {
                key: key.clone(),
                n: c.unflushed,
                ttl: c.ttl,
            });
            c.inflight += c.unflushed;
            c.unflushed = 0;
        }
        self.dirty = 0;
        out
    }

    /// Redis answered `batch`: each window's global count after our `INCRBY`.
    pub(crate) fn learned(&mut self, batch: &[Flush], totals: &[u64]) {
        for (f, total) in batch.iter().zip(totals) {
            if let Some(c) = self.counts.get_mut(&f.key) {
                c.inflight = c.inflight.saturating_sub(f.n);
                // Replies of one connection come in order: a later total is never smaller.
                c.known = c.known.max(*total);
            }
        }
    }

    /// `batch` got no answer (Redis down or slow): its counts are dropped, and so is
    /// everything admitted since — those requests passed while Redis could not count them.
    pub(crate) fn lost(&mut self, batch: &[Flush]) {
        for f in batch {
            if let Some(c) = self.counts.get_mut(&f.key) {
                c.inflight = c.inflight.saturating_sub(f.n);
            }
        }
        self.forget_unflushed();
    }

    /// Drops every unflushed count (Redis is unreachable: they cannot be sent).
    pub(crate) fn forget_unflushed(&mut self) {
        for c in self.counts.values_mut() {
            c.unflushed = 0;
        }
        self.dirty = 0;
    }

    /// Forgets windows that ended before unix second `now` and have nothing to send or
    /// wait for.
    pub(crate) fn sweep(&mut self, now: u64) {
        self.counts
            .retain(|_, c| c.ends > now || c.inflight > 0 || c.unflushed > 0);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.counts.len()
    }
}

/// How many requests a worker admits to one window before it syncs without waiting for the
/// interval: 1/64 of the limit (at least 1). It bounds each worker's overshoot per window.
pub(crate) fn flush_at(limit: u64) -> u64 {
    limit.div_ceil(64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_to_the_limit_then_refuses_until_the_window_ends() {
        let mut w = Windows::default();
        for i in 0..3 {
            assert_eq!(
                w.admit(b"k", 3, 60, 120, 100),
                Admit::Yes { flush: true },
                "{i}"
            );
        }
        assert_eq!(
            w.admit(b"k", 3, 60, 120, 100),
            Admit::Over { reset_secs: 20 }
        );
        assert_eq!(
            w.admit(b"k", 3, 60, 120, 130),
            Admit::Over { reset_secs: 1 }
        );
        // Another key, another window.
        assert_eq!(w.admit(b"j", 3, 60, 120, 100), Admit::Yes { flush: true });
        assert!(w.dirty());
        let batch = w.take();
        assert!(!w.dirty());
        let mut sent: Vec<(&[u8], u64, u64)> =
            batch.iter().map(|f| (&*f.key, f.n, f.ttl)).collect();
        sent.sort();
        assert_eq!(sent, [(&b"j"[..], 1, 120), (&b"k"[..], 3, 120)]);
    }

    #[test]
    fn the_global_count_learned_refuses_what_other_proxies_used() {
        let mut w = Windows::default();
        assert_eq!(w.admit(b"k", 100, 1, 11, 10), Admit::Yes { flush: false });
        let batch = w.take();
        // Meanwhile another worker admitted one more before Redis answered.
        assert_eq!(w.admit(b"k", 100, 1, 11, 10), Admit::Yes { flush: false });
        // Redis says 99 in all (the others took 98).
        w.learned(&batch, &[99]);
        assert!(matches!(w.admit(b"k", 100, 1, 11, 10), Admit::Over { .. }));
        // The one admitted meanwhile is still to be sent.
        let batch = w.take();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].n, 1);
    }

    #[test]
    fn in_flight_counts_hold_until_answered_or_lost() {
        let mut w = Windows::default();
        for _ in 0..2 {
            w.admit(b"k", 2, 1, 11, 10);
        }
        let batch = w.take();
        assert!(matches!(w.admit(b"k", 2, 1, 11, 10), Admit::Over { .. }));
        // No answer: the batch's counts and anything admitted since are dropped.
        w.lost(&batch);
        assert_eq!(w.admit(b"k", 2, 1, 11, 10), Admit::Yes { flush: true });
        w.forget_unflushed();
        assert!(!w.dirty());
        assert!(w.take().is_empty());
    }

    #[test]
    fn eager_flushes_come_every_sixty_fourth_of_the_limit() {
        assert_eq!(flush_at(1), 1);
        assert_eq!(flush_at(64), 1);
        assert_eq!(flush_at(600), 10);
        let mut w = Windows::default();
        let flushes = (0..600)
            .filter(|_| matches!(w.admit(b"k", 600, 60, 60, 0), Admit::Yes { flush: true }))
            .count();
        // Nothing was taken, so every request from the tenth on asks for a flush.
        assert_eq!(flushes, 591);
    }

    #[test]
    fn ended_windows_are_swept_and_the_table_is_bounded() {
        let mut w = Windows::default();
        w.admit(b"old", 5, 1, 11, 10);
        w.admit(b"new", 5, 1, 13, 12);
        w.sweep(12);
        assert_eq!(w.len(), 2, "old still has a count to send");
        w.take();
        w.sweep(12);
        assert_eq!(w.len(), 2, "and waits for its answer");
        w.forget_unflushed();
        let batch: Vec<Flush> = Vec::new();
        w.learned(&batch, &[]);
        let mut w = Windows::default();
        for i in 0..MAX_KEYS as u32 {
            assert!(matches!(
                w.admit(&i.to_be_bytes(), 5, 1, 11, 10),
                Admit::Yes { .. }
            ));
        }
        assert_eq!(w.admit(b"one more", 5, 1, 11, 10), Admit::Full);
        let batch = w.take();
        w.learned(&batch, &vec![1; batch.len()]);
        w.sweep(11);
        assert_eq!(w.len(), 0);
        assert!(matches!(
            w.admit(b"one more", 5, 1, 12, 11),
            Admit::Yes { .. }
        ));
    }
}
