//! The in-flight bound shared by `par_map` and `map_async`.
//!
//! Invariants:
//! - `count` is the number of elements the node has accepted and whose outputs have not yet been
//!   accepted downstream. It is incremented before an element is handed to the workers and
//!   decremented only after its output was pushed, so it never underflows.
//! - A push that brings `count` to `bound` or above makes the caller wait (the element itself is
//!   always accepted: nothing is dropped and no thread blocks). The wait resolves once `count` is
//!   back below `bound`, or the gate is opened for good when the node's task stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::graph::Cx;
use crate::graph::sync::until;

pub(crate) struct Gate {
    bound: usize,
    count: AtomicUsize,
    open: AtomicBool,
    room: Notify,
}

impl Gate {
    pub(crate) fn new(bound: usize) -> Arc<Gate> {
        Arc::new(Gate {
            bound,
            count: AtomicUsize::new(0),
            open: AtomicBool::new(false),
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
            Ok(())
        });
    }

    fn has_room(&self) -> bool {
        self.count.load(Ordering::Acquire) < self.bound || self.open.load(Ordering::Acquire)
    }

    /// One element left the node (its output was accepted downstream, or it was discarded).
    #[inline]
    pub(crate) fn leave(&self) {
        // Only the crossing from full to not-full can release a waiter: waking on every
        // element would cost a lock per element when the producer is not waiting.
        if self.count.fetch_sub(1, Ordering::AcqRel) == self.bound {
            self.room.notify_waiters();
        }
    }

    /// Releases every waiter for good: the node's task has stopped.
    pub(crate) fn open(&self) {
        self.open.store(true, Ordering::Release);
        self.room.notify_waiters();
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
