//! `Event`: a single-thread broadcast latch for one worker.
//!
//! Used for "stop" conditions inside a worker — drain started, a listener removed, a
//! connection slot freed. Once `fire()`d an event stays fired; `notify_one_slot()` wakes
//! waiters without latching (for "a slot is free, look again"). Waiters that are dropped
//! before the event fires deregister, so a long-lived connection that waits on the drain
//! event once per request does not grow the waiter list.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub(crate) struct Event {
    fired: Cell<bool>,
    /// Bumped by `notify_all`; a waiter that saw an older epoch is woken.
    epoch: Cell<u64>,
    waiters: RefCell<Slots>,
}

#[derive(Default)]
struct Slots {
    wakers: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Event {
    pub(crate) fn new() -> Rc<Event> {
        Rc::new(Event::default())
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Latches the event and wakes every waiter.
    pub(crate) fn fire(&self) {
        self.fired.set(true);
        self.notify_all();
    }

    /// Wakes every current waiter without latching.
    pub(crate) fn notify_all(&self) {
        self.epoch.set(self.epoch.get().wrapping_add(1));
        let wakers: Vec<Waker> = {
            let mut slots = self.waiters.borrow_mut();
            slots.wakers.iter_mut().filter_map(Option::take).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// Resolves when the event fires, or — for a non-latched wait — at the next `notify_all`.
    pub(crate) fn wait(self: &Rc<Self>) -> Wait {
        Wait {
            event: self.clone(),
            slot: None,
            epoch: self.epoch.get(),
        }
    }
}

pub(crate) struct Wait {
    event: Rc<Event>,
    slot: Option<usize>,
    epoch: u64,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let ev = self.event.clone();
        if ev.fired.get() || ev.epoch.get() != self.epoch {
            return Poll::Ready(());
        }
        let mut slots = ev.waiters.borrow_mut();
        match self.slot {
            Some(i) => {
                if let Some(w) = slots.wakers.get_mut(i) {
                    *w = Some(cx.waker().clone());
                }
            }
            None => {
                let i = match slots.free.pop() {
                    Some(i) => {
                        if let Some(w) = slots.wakers.get_mut(i) {
                            *w = Some(cx.waker().clone());
                        }
                        i
                    }
                    None => {
                        slots.wakers.push(Some(cx.waker().clone()));
                        slots.wakers.len() - 1
                    }
                };
                drop(slots);
                self.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            if let Ok(mut slots) = self.event.waiters.try_borrow_mut() {
                if let Some(w) = slots.wakers.get_mut(i) {
                    *w = None;
                    slots.free.push(i);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[monoio::test(timer_enabled = true)]
    async fn fire_wakes_waiters_and_latches() {
        let ev = Event::new();
        let e2 = ev.clone();
        let h = monoio::spawn(async move { e2.wait().await });
        monoio::time::sleep(std::time::Duration::from_millis(5)).await;
        ev.fire();
        h.await;
        ev.wait().await; // latched: resolves at once
    }

    #[monoio::test(timer_enabled = true)]
    async fn dropped_waiters_free_their_slot() {
        let ev = Event::new();
        for _ in 0..100 {
            let w = ev.wait();
            let _ = monoio::time::timeout(std::time::Duration::from_millis(1), w).await;
        }
        assert!(ev.waiters.borrow().wakers.len() <= 1);
    }
}
