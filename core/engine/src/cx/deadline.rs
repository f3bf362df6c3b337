//! Coarse deadlines for connections that wait a long time: idle keep-alive connections.
//!
//! A monoio timer (`Sleep`) is 640 bytes; ten thousand idle clients would hold over 6 MiB of
//! timers for deadlines nobody needs to the millisecond (an idle timeout of a minute closes
//! a connection a few hundred milliseconds late at most). A coarse [`Deadline`] is one slot
//! in its worker's [`Deadlines`] table (about 40 bytes), and fires at the first housekeeping
//! tick at or after its time ([`Deadlines::fire`], called by the worker once every
//! [`TICK`]). A wait shorter than [`PRECISE_BELOW`] gets a real timer instead, so short
//! timeouts (a head timeout of 200 ms in a test) stay exact.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use monoio::time::Instant;

/// How often the worker fires due deadlines (`worker::housekeeping`).
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// Waits shorter than this use a precise timer.
pub(crate) const PRECISE_BELOW: Duration = Duration::from_secs(3);

/// One worker's coarse deadlines (single-threaded).
#[derive(Default)]
pub(crate) struct Deadlines {
    table: RefCell<Table>,
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

struct Slot {
    at: Instant,
    waker: Option<Waker>,
    fired: bool,
    used: bool,
}

impl Deadlines {
    /// A future that resolves at `at`: precisely when `at` is near, else at the first tick
    /// after it.
    pub(crate) fn sleep_until(&self, at: Instant) -> Deadline<'_> {
        if at.saturating_duration_since(Instant::now()) < PRECISE_BELOW {
            return Deadline::Precise(crate::cx::io::sleep_until(at));
        }
        let mut t = self.table.borrow_mut();
        let slot = Slot {
            at,
            waker: None,
            fired: false,
            used: true,
        };
        let index = match t.free.pop() {
            Some(i) => {
                if let Some(s) = t.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                t.slots.push(slot);
                u32::try_from(t.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        Deadline::Coarse { table: self, index }
    }

    /// Fires every deadline that is due (the worker's housekeeping tick).
    pub(crate) fn fire(&self, now: Instant) {
        let wakers: Vec<Waker> = {
            let mut t = self.table.borrow_mut();
            t.slots
                .iter_mut()
                .filter(|s| s.used && !s.fired && s.at <= now)
                .filter_map(|s| {
                    s.fired = true;
                    s.waker.take()
                })
                .collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Deadlines waiting (for tests and the size check).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.table.borrow().slots.iter().filter(|s| s.used).count()
    }
}

/// A deadline from [`Deadlines::sleep_until`].
pub(crate) enum Deadline<'a> {
    Precise(Pin<Box<monoio::time::Sleep>>),
    Coarse { table: &'a Deadlines, index: u32 },
}

impl Future for Deadline<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Deadline::Precise(sleep) => sleep.as_mut().poll(cx),
            Deadline::Coarse { table, index } => {
                let mut t = table.table.borrow_mut();
                let Some(s) = t.slots.get_mut(*index as usize) else {
                    return Poll::Ready(());
                };
                if s.fired {
                    return Poll::Ready(());
                }
                match &s.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => s.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        if let Deadline::Coarse { table, index } = self {
            let mut t = table.table.borrow_mut();
            if let Some(s) = t.slots.get_mut(*index as usize) {
                s.used = false;
                s.waker = None;
                t.free.push(*index);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[monoio::test_all(timer_enabled = true)]
    async fn near_deadlines_are_precise_far_ones_wait_for_a_tick() {
        let d = Deadlines::default();
        let start = Instant::now();
        d.sleep_until(start + Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(d.waiting(), 0, "a precise deadline takes no slot");

        let far = start + PRECISE_BELOW * 2;
        let mut wait = std::pin::pin!(d.sleep_until(far));
        assert_eq!(d.waiting(), 1);
        let pending = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending()));
        assert!(pending.await, "not due yet");
        d.fire(far - Duration::from_millis(1));
        let pending = std::future::poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending()));
        assert!(pending.await, "a tick before the deadline does not fire it");
        d.fire(far);
        wait.await;
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn dropped_deadlines_free_their_slot_for_reuse() {
        let d = Deadlines::default();
        let far = Instant::now() + PRECISE_BELOW * 2;
        for _ in 0..100 {
            drop(d.sleep_until(far));
        }
        let _a = d.sleep_until(far);
        let _b = d.sleep_until(far);
        assert_eq!(d.waiting(), 2);
        assert!(d.table.borrow().slots.len() <= 2, "slots are reused");
    }
}
