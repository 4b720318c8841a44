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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};

use crate::Error;
use crate::graph::Cx;
use crate::graph::sync::{Gate as Waiters, Lock};

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
}

impl Gate {
    pub(crate) fn new(bound: usize) -> Arc<Gate> {
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
            gate.room.until(|| gate.has_room()).await;
            gate.fault.lock().clone().map_or(Ok(()), Err)
        });
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
