//! The in-flight bound shared by `par_map` and `map_async`.
//!
//! Invariants:
//! - The number in flight is `added - left`: `added` counts the elements the node accepted
//!   (incremented before an element is handed to the workers), `left` those whose outputs were
//!   accepted downstream (incremented only after the push), so `left <= added`.
//! - A push that brings the number in flight to `bound` or above makes the caller wait (the
//!   element itself is always accepted: nothing is dropped and no thread blocks). The wait
//!   resolves once the number is down to the low-water mark `bound / 2`, or the gate is opened
//!   for good when the node's task stops. Resuming at half rather than at `bound - 1` batches
//!   wake-ups: a producer faster than the workers is woken once per `bound / 2` results.
//! - The two counters sit on cache lines of their own: the pushes into the node write
//!   `added`, the threads that deliver write `left`, so neither steals the other's line per
//!   element. A push reads `left` only when its last reading (`seen_left`) says the node is
//!   full; a delivery reads `added` only when someone waits. A stale `seen_left` only
//!   overstates the number in flight, and is read afresh before anyone waits.
//! - No wake-up is lost: a waiter counts itself, then checks; every delivery increments
//!   `left`, then checks for waiters and, if there are any, the condition (all sequentially
//!   consistent).
//! - A gate built [`polling`](Gate::polling) (a `par_map` whose workers leave a core free)
//!   looks for room a bounded number of times, letting its runtime run other tasks between
//!   looks, before it counts itself as a waiter: a pool that drains to the low-water mark within
//!   microseconds then costs no wake-up of the producer's thread, which on a virtual machine
//!   costs the worker several microseconds. Polling stops paying after a few misses in a row
//!   (then it is tried again only now and then), so a slow pool does not keep a core busy.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::task::Poll;

use crate::Error;
use crate::graph::Cx;
use crate::graph::sync::{Gate as Waiters, Lock};
use crate::parallel::pool::should_poll;

/// Times a polling gate looks for room before its waiter parks (see the module invariants).
const ROOM_POLLS: u32 = 256;

/// A value on a cache line (a pair of them, for adjacent-line prefetching) of its own.
#[repr(align(128))]
struct Line<T>(T);

/// What the pushes into the node write.
struct Ins {
    added: AtomicUsize,
    seen_left: AtomicUsize,
}

pub(crate) struct Gate {
    bound: usize,
    low: usize,
    ins: Line<Ins>,
    left: Line<AtomicUsize>,
    open: AtomicBool,
    /// Set when the node's task died: waiters fail with it.
    fault: Lock<Option<Error>>,
    room: Waiters,
    /// How many times a wait looks for room before it parks: 0 or [`ROOM_POLLS`].
    polls: u32,
    /// Waits in a row whose polling found no room (see `pool::should_poll`).
    misses: AtomicU32,
}

impl Gate {
    pub(crate) fn new(bound: usize) -> Arc<Gate> {
        Gate::build(bound, 0)
    }

    /// A gate whose waits look for room a few times before they park (see the module
    /// invariants): for a node whose workers run on cores of their own.
    pub(crate) fn polling(bound: usize) -> Arc<Gate> {
        Gate::build(bound, ROOM_POLLS)
    }

    fn build(bound: usize, polls: u32) -> Arc<Gate> {
        Arc::new(Gate {
            bound,
            low: bound / 2,
            ins: Line(Ins {
                added: AtomicUsize::new(0),
                seen_left: AtomicUsize::new(0),
            }),
            left: Line(AtomicUsize::new(0)),
            open: AtomicBool::new(false),
            fault: Lock::new(None),
            room: Waiters::new(),
            polls,
            misses: AtomicU32::new(0),
        })
    }

    /// Counts one more element in flight; true when that makes the node full.
    #[inline]
    pub(crate) fn add(&self) -> bool {
        let ins = &self.ins.0;
        let added = ins.added.fetch_add(1, SeqCst) + 1;
        if added.saturating_sub(ins.seen_left.load(Relaxed)) < self.bound {
            return false;
        }
        let left = self.left.0.load(SeqCst);
        ins.seen_left.fetch_max(left, Relaxed);
        added.saturating_sub(left) >= self.bound
    }

    /// Makes the push in progress wait until the node has room again.
    pub(crate) fn wait(self: &Arc<Self>, cx: &mut Cx) {
        let gate = self.clone();
        cx.wait(async move {
            if !gate.poll_for_room().await {
                gate.room.until(|| gate.has_room()).await;
            }
            gate.fault.lock().clone().map_or(Ok(()), Err)
        });
    }

    /// Looks for room up to `polls` times, re-scheduling the waiting task between looks so
    /// that the runtime runs its other tasks; true when it found room.
    async fn poll_for_room(&self) -> bool {
        let misses = self.misses.load(Relaxed);
        if self.polls == 0 || !should_poll(misses) {
            self.misses.store(misses.wrapping_add(1), Relaxed);
            return false;
        }
        let mut left = self.polls;
        let found = poll_fn(|cx| {
            if self.has_room() {
                Poll::Ready(true)
            } else if left == 0 {
                Poll::Ready(false)
            } else {
                left -= 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        let misses = if found { 0 } else { misses.wrapping_add(1) };
        self.misses.store(misses, Relaxed);
        found
    }

    fn has_room(&self) -> bool {
        self.len() <= self.low || self.open.load(SeqCst)
    }

    /// One element left the node (its output was accepted downstream, or it was discarded).
    #[inline]
    pub(crate) fn leave(&self) {
        let left = self.left.0.fetch_add(1, SeqCst) + 1;
        self.room
            .wake_if(|| self.ins.0.added.load(SeqCst).saturating_sub(left) <= self.low);
    }

    /// Releases every waiter for good: the node's task has stopped.
    pub(crate) fn open(&self) {
        self.open.store(true, SeqCst);
        self.room.wake();
    }

    /// Releases every waiter for good with `error`: the node's task died.
    pub(crate) fn kill(&self, error: &Error) {
        *self.fault.lock() = Some(error.clone());
        self.open();
    }

    /// Whether a push now would make the caller wait (see [`add`](Self::add)).
    pub(crate) fn is_full(&self) -> bool {
        self.len() + 1 >= self.bound && !self.open.load(SeqCst)
    }

    /// Elements in flight now.
    pub(crate) fn len(&self) -> usize {
        // `left` first: `added` only grows, so it is at least the `left` read before it.
        let left = self.left.0.load(SeqCst);
        self.ins.0.added.load(SeqCst).saturating_sub(left)
    }
}

/// Opens the gate when dropped: a task that stops, however it stops, never strands a waiter.
pub(crate) struct OpenOnDrop(pub(crate) Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};

    use super::*;
    use crate::parallel::pool::MAX_MISSES;

    /// A waker that counts how often it is woken.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// A full gate of bound 4: four elements in flight.
    fn full(gate: &Gate) {
        for _ in 0..4 {
            gate.add();
        }
    }

    /// Polls `poll_for_room` until it answers; returns the answer and the self-wakes.
    fn poll_for_room(gate: &Gate) -> (bool, usize) {
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(gate.poll_for_room());
        loop {
            if let Poll::Ready(found) = fut.as_mut().poll(&mut cx) {
                return (found, count.0.load(SeqCst));
            }
        }
    }

    #[test]
    fn a_polling_wait_gives_up_after_its_polls_and_then_polls_only_now_and_then() {
        let gate = Gate::polling(4);
        full(&gate);
        // Each miss re-schedules the task `ROOM_POLLS` times, then gives up.
        for _ in 0..MAX_MISSES {
            assert_eq!(poll_for_room(&gate), (false, ROOM_POLLS as usize));
        }
        // Polling stopped paying: the next waits park at once, until the retry comes round.
        let polled: Vec<usize> = (MAX_MISSES..32).map(|_| poll_for_room(&gate).1).collect();
        assert_eq!(polled.iter().filter(|&&n| n > 0).count(), 1, "{polled:?}");
        // Room found by a poll resets the count: the next wait polls again.
        gate.leave();
        gate.leave();
        assert_eq!(poll_for_room(&gate), (true, 0));
        gate.add();
        gate.add();
        assert_eq!(poll_for_room(&gate), (false, ROOM_POLLS as usize));
    }

    #[test]
    fn a_gate_that_does_not_poll_parks_at_once() {
        let gate = Gate::new(4);
        full(&gate);
        assert_eq!(poll_for_room(&gate), (false, 0));
    }

    #[test]
    fn room_made_while_a_wait_polls_ends_it_without_a_wake_up() {
        let gate = Gate::polling(4);
        full(&gate);
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(gate.poll_for_room());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        gate.leave();
        gate.leave();
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(true));
        assert_eq!(count.0.load(SeqCst), 1, "re-scheduled once, never parked");
    }
}
