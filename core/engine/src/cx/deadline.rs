//! Deadlines for the data path: coarse where a timeout is long, precise where it is short.
//!
//! A monoio timer (`Sleep`) is 640 bytes aligned to 128, and each one costs an allocation and
//! an insertion into the runtime's timer wheel: several hundred instructions, several times
//! per request (the keep-alive wait, the upstream response's timeout, the write timeouts).
//! A coarse [`Deadline`] is one slot in its thread's table (about 40 bytes, reused), and
//! fires at the first tick at or after its time ([`fire`], called by the worker's
//! housekeeping every [`TICK`]). Nobody needs an idle or write timeout of a minute to the
//! millisecond; a wait shorter than [`PRECISE_BELOW`] gets a real timer, so short timeouts
//! (a head timeout of 200 ms in a test) stay exact.
//!
//! The table is per thread, as everything in a worker is: a deadline made on a worker is
//! fired by that worker's tick.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use monoio::time::Instant;

/// How often the worker fires due deadlines (`worker::housekeeping`).
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Waits shorter than this use a precise timer.
pub(crate) const PRECISE_BELOW: Duration = Duration::from_secs(1);

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::default());
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

/// Resolves after `d`: see [`sleep_until`].
pub(crate) fn sleep(d: Duration) -> Deadline {
    if d < PRECISE_BELOW {
        return Deadline::Precise(Box::pin(monoio::time::sleep(d)));
    }
    coarse_until(Instant::now() + d)
}

/// Resolves at `at`: precisely when `at` is less than [`PRECISE_BELOW`] away, else at the
/// first tick after it.
pub(crate) fn sleep_until(at: Instant) -> Deadline {
    if at.saturating_duration_since(Instant::now()) < PRECISE_BELOW {
        return Deadline::Precise(Box::pin(monoio::time::sleep_until(at)));
    }
    coarse_until(at)
}

/// Resolves at the first tick at or after `at`, however near it is (up to a [`TICK`] late).
pub(crate) fn coarse_until(at: Instant) -> Deadline {
    let slot = Slot {
        at,
        waker: None,
        fired: false,
        used: true,
    };
    let index = TABLE.with_borrow_mut(|t| match t.free.pop() {
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
    });
    Deadline::Coarse(index)
}

thread_local! {
    /// Whole seconds since the process's first tick, as of this thread's last tick (`fire`).
    static SECONDS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The process's monotonic epoch, the same for every thread.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Seconds since the process's epoch, as of this worker's last tick: a clock read costs a
/// thread-local load (for counters in one-second slots, like the retry budget's). Every
/// worker counts from the same epoch, so their seconds agree to within a tick.
pub(crate) fn coarse_seconds() -> u64 {
    match SECONDS.get() {
        0 => Instant::now().saturating_duration_since(epoch()).as_secs() + 1,
        s => s,
    }
}

/// Fires every coarse deadline of this thread that is due (the worker's housekeeping tick).
pub(crate) fn fire(now: Instant) {
    SECONDS.set(now.saturating_duration_since(epoch()).as_secs() + 1);
    let wakers: Vec<Waker> = TABLE.with_borrow_mut(|t| {
        t.slots
            .iter_mut()
            .filter(|s| s.used && !s.fired && s.at <= now)
            .filter_map(|s| {
                s.fired = true;
                s.waker.take()
            })
            .collect()
    });
    for w in wakers {
        w.wake();
    }
}

/// A deadline from [`sleep`], [`sleep_until`] or [`coarse_until`].
pub(crate) enum Deadline {
    Precise(Pin<Box<monoio::time::Sleep>>),
    Coarse(u32),
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Deadline::Precise(sleep) => sleep.as_mut().poll(cx),
            Deadline::Coarse(index) => TABLE.with_borrow_mut(|t| {
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
            }),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        if let Deadline::Coarse(index) = *self {
            // `try_with`: a deadline dropped while the thread's locals are torn down.
            let _ = TABLE.try_with(|t| {
                let mut t = t.borrow_mut();
                if let Some(s) = t.slots.get_mut(index as usize) {
                    s.used = false;
                    s.waker = None;
                    t.free.push(index);
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> usize {
        TABLE.with_borrow(|t| t.slots.iter().filter(|s| s.used).count())
    }

    fn is_pending(d: &mut Pin<&mut Deadline>) -> bool {
        let waker = std::task::Waker::noop();
        d.as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending()
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn near_deadlines_are_precise_far_ones_wait_for_a_tick() {
        let start = Instant::now();
        sleep_until(start + Duration::from_millis(20)).await;
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(waiting(), 0, "a precise deadline takes no slot");

        let far = start + PRECISE_BELOW * 2;
        let mut wait = std::pin::pin!(sleep_until(far));
        assert_eq!(waiting(), 1);
        assert!(is_pending(&mut wait), "not due yet");
        fire(far - Duration::from_millis(1));
        assert!(
            is_pending(&mut wait),
            "a tick before the deadline does not fire it"
        );
        fire(far);
        wait.await;
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn coarse_deadlines_fire_at_a_tick_however_near() {
        let at = Instant::now() + Duration::from_millis(5);
        let mut wait = std::pin::pin!(coarse_until(at));
        assert!(is_pending(&mut wait));
        monoio::time::sleep(Duration::from_millis(10)).await;
        assert!(is_pending(&mut wait), "due, but no tick yet");
        fire(Instant::now());
        wait.await;
    }

    #[monoio::test_all(timer_enabled = true)]
    async fn dropped_deadlines_free_their_slot_for_reuse() {
        let far = Instant::now() + PRECISE_BELOW * 2;
        for _ in 0..100 {
            drop(sleep_until(far));
        }
        let _a = sleep_until(far);
        let _b = sleep_until(far);
        assert_eq!(waiting(), 2);
        assert!(
            TABLE.with_borrow(|t| t.slots.len()) <= 2,
            "slots are reused"
        );
    }
}
