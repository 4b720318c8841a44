//! The in-flight bound shared by `par_map` and `map_async`.
//!
//! Invariants:
//! - `count` is the number of elements the node has accepted and whose outputs have not yet been
//!   accepted downstream. It is incremented before an element is handed to the workers and
//!   decremented only after its output was pushed, so it never underflows.
//! - A push that brings `count` to `bound` or above makes the caller wait (the element itself is
//!   always accepted: nothing is dropped and no thread blocks). The wait resolves once `count` is
//!   down to the low-water mark `bound / 2`, or the gate is opened for good when the node's task
//!   stops. Resuming at half rather than at `bound - 1` batches wake-ups: a producer faster than
//!   the workers is woken once per `bound / 2` results, not once per result, while the workers
//!   still have half a window of queued work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::Error;
use crate::graph::Cx;
use crate::graph::sync::{Lock, until};

pub(crate) struct Gate {
    bound: usize,
    low: usize,
    count: AtomicUsize,
    open: AtomicBool,
    /// Set when the node's task died: waiters fail with it.
    fault: Lock<Option<Error>>,
    room: Notify,
}

impl Gate {
    pub(crate) fn new(bound: usize) -> Arc<Gate> {
        Arc::new(Gate {
            bound,
            low: bound / 2,
            count: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            fault: Lock::new(None),
            room: Notify::new(),
        })
    }

    /// Counts one more element in flight; true when that makes the node full.
    #[inline]
    pub(crate) fn add(&self) -> bool {
        self.count.fetch_add(1, Ordering::AcqRel) + 1 >= self.bound
    }

    /// Makes the push in progress wait until the node has room again.
    pub(crate) fn wait(self: &Arc<Self>, cx: &mut Cx) {
        let gate = self.clone();
        cx.wait(async move {
            until(&gate.room, || gate.has_room()).await;
            gate.fault.lock().clone().map_or(Ok(()), Err)
        });
    }

    fn has_room(&self) -> bool {
        self.count.load(Ordering::Acquire) <= self.low || self.open.load(Ordering::Acquire)
    }

    /// One element left the node (its output was accepted downstream, or it was discarded).
    #[inline]
    pub(crate) fn leave(&self) {
        // Only the crossing down to the low-water mark can release a waiter: every waiter
        // registered above it, and counts move one at a time.
        if self.count.fetch_sub(1, Ordering::AcqRel) == self.low + 1 {
            self.room.notify_waiters();
        }
    }

    /// Releases every waiter for good: the node's task has stopped.
    pub(crate) fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.room.notify_waiters();
    }

    /// Releases every waiter for good with `error`: the node's task died.
    pub(crate) fn kill(&self, error: &Error) {
        *self.fault.lock() = Some(error.clone());
        self.open();
    }

    /// Whether a push now would make the caller wait (see [`add`](Self::add)).
    pub(crate) fn is_full(&self) -> bool {
        self.len() + 1 >= self.bound && !self.open.load(Ordering::Acquire)
    }

    /// Elements in flight now.
    pub(crate) fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

/// Opens the gate when dropped: a task that stops, however it stops, never strands a waiter.
pub(crate) struct OpenOnDrop(pub(crate) Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}
