//! The idle connections of one worker, oldest first: what the memory ceiling sheds
//! (`cx/memory.rs`).
//!
//! Where it sits: an HTTP/1.1 connection waiting for its next request (`cold_wait` in
//! `downstream/http/mod.rs`, plaintext or TLS) also waits on an [`IdleWait`] while the
//! process has a memory ceiling; the worker's housekeeping calls [`shed_oldest`] while memory
//! is short, which wakes the longest-idle waits, and those connections close. A connection
//! with a request in flight is never in the table, so shedding never cuts a request.
//!
//! Shape: a per-thread table (as `cx/deadline.rs`), keyed by a sequence number taken when the
//! wait first polls, so the first keys are the oldest. An [`IdleWait`] is 16 bytes in its
//! connection's future; one that is not enabled (no ceiling) never touches the table.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
}

#[derive(Default)]
struct Table {
    next: u64,
    waits: BTreeMap<u64, Entry>,
    /// Entries not shed yet.
    live: usize,
}

struct Entry {
    waker: Option<Waker>,
    shed: bool,
}

/// Resolves when the housekeeping sheds this connection; pending forever when not enabled.
pub(crate) struct IdleWait {
    /// The table key once registered; 0: not registered.
    key: u64,
    enabled: bool,
}

/// A wait for being shed, registered on its first poll when `enabled` (the process has a
/// memory ceiling).
pub(crate) fn wait(enabled: bool) -> IdleWait {
    IdleWait { key: 0, enabled }
}

impl Future for IdleWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.enabled {
            return Poll::Pending;
        }
        let key = self.key;
        let (key, shed) = TABLE.with_borrow_mut(|t| {
            if key == 0 {
                t.next += 1;
                let key = t.next;
                t.waits.insert(
                    key,
                    Entry {
                        waker: Some(cx.waker().clone()),
                        shed: false,
                    },
                );
                t.live += 1;
                return (key, false);
            }
            match t.waits.get_mut(&key) {
                Some(e) if e.shed => (key, true),
                Some(e) => {
                    if !e.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        e.waker = Some(cx.waker().clone());
                    }
                    (key, false)
                }
                None => (key, true),
            }
        });
        self.key = key;
        if shed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Drop for IdleWait {
    fn drop(&mut self) {
        if self.key == 0 {
            return;
        }
        // `try_with`: a wait dropped while the thread's locals are torn down has nothing to
        // remove.
        let _ = TABLE.try_with(|t| {
            let mut t = t.borrow_mut();
            if let Some(e) = t.waits.remove(&self.key) {
                if !e.shed {
                    t.live = t.live.saturating_sub(1);
                }
            }
        });
    }
}

/// Sheds up to `n` of this thread's longest-idle connections: their waits resolve and the
/// connections close. Returns how many were shed.
pub(crate) fn shed_oldest(n: usize) -> usize {
    let wakers: Vec<Waker> = TABLE.with_borrow_mut(|t| {
        let mut wakers = Vec::new();
        let mut shed = 0;
        for e in t.waits.values_mut() {
            if shed == n {
                break;
            }
            if e.shed {
                continue;
            }
            e.shed = true;
            shed += 1;
            wakers.extend(e.waker.take());
        }
        t.live = t.live.saturating_sub(shed);
        wakers
    });
    let shed = wakers.len();
    for w in wakers {
        w.wake();
    }
    shed
}

/// Idle connections of this thread not shed yet.
pub(crate) fn live() -> usize {
    TABLE.with_borrow(|t| t.live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll(w: &mut IdleWait, waker: &Waker) -> Poll<()> {
        Pin::new(w).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn the_oldest_are_shed_first_and_dropped_waits_leave_the_table() {
        let flags: Vec<Arc<Flag>> = (0..4)
            .map(|_| Arc::new(Flag(std::sync::atomic::AtomicBool::new(false))))
            .collect();
        let wakers: Vec<Waker> = flags.iter().map(|f| Waker::from(Arc::clone(f))).collect();
        let mut waits: Vec<IdleWait> = (0..4).map(|_| wait(true)).collect();
        for (w, k) in waits.iter_mut().zip(&wakers) {
            assert!(poll(w, k).is_pending());
        }
        let mut off = wait(false);
        assert!(poll(&mut off, &wakers[0]).is_pending());
        assert_eq!(live(), 4);
        // The oldest (first polled) goes first.
        drop(waits.remove(1));
        assert_eq!(live(), 3);
        assert_eq!(shed_oldest(2), 2);
        let woken: Vec<bool> = flags
            .iter()
            .map(|f| f.0.load(std::sync::atomic::Ordering::SeqCst))
            .collect();
        assert_eq!(woken, [true, false, true, false]);
        assert!(poll(&mut waits[0], &wakers[0]).is_ready());
        assert!(poll(&mut waits[1], &wakers[2]).is_ready());
        assert!(poll(&mut waits[2], &wakers[3]).is_pending());
        assert_eq!(live(), 1);
        assert_eq!(shed_oldest(10), 1);
        assert_eq!(live(), 0);
        drop(waits);
        assert_eq!(shed_oldest(10), 0);
        assert!(TABLE.with_borrow(|t| t.waits.is_empty()));
    }
}
