//! `slice`: elements by position, as Python's `list[start:end:step]` (Streamz's `slice`).
//!
//! Why the node ends its branch: a slice with an end passes nothing after it, so what follows
//! it would otherwise wait for the whole upstream to end before flushing (a window, a
//! `collect`, a `close()` waiting downstream). Once its last element has passed, the node ends
//! its targets exactly as when its upstream ends, and from then on drops what reaches it
//! after one atomic load (Streamz detaches the node from its upstream instead; here the edge
//! stays, and costs that load).
//!
//! Invariants:
//! - Positions count from 0, every element that reaches the node counting once, passed or
//!   not. Element `i` passes when `start <= i < end` and `(i - start)` is a multiple of `step`.
//! - The node ends once every position up to the last element of the slice has been dealt
//!   with (the last element pushed downstream, even if that push panicked; elements pushed by
//!   other threads meanwhile included), or at build time if the slice is empty; a target
//!   attached after that is ended at once.
//! - Dropped elements are treated as `filter` treats them: their tokens are released at once.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use crate::graph::{Cx, Input, Node, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct Slice<T: Item> {
    start: u64,
    step: u64,
    /// The position of the slice's last element, when the slice has an end.
    last: Option<u64>,
    next: AtomicU64,
    /// How many positions up to `last` have been dealt with.
    through: AtomicU64,
    ended: AtomicBool,
    /// The node itself, to end it from its own input.
    node: OnceLock<Weak<Node<Slice<T>>>>,
    _t: PhantomData<fn(T)>,
}

impl<T: Item> Slice<T> {
    /// Ends the node's branch (once), as when its upstream ends.
    #[cold]
    fn end_branch(&self, cx: &mut Cx) {
        if !self.ended.swap(true, Ordering::AcqRel)
            && let Some(node) = self.node.get().and_then(Weak::upgrade)
        {
            node.finish(cx);
        }
    }
}

impl<T: Item> Operator for Slice<T> {
    type Out = T;
}

impl<T: Item> Input<0> for Slice<T> {
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<T>, cx: &mut Cx) {
        if self.ended.load(Ordering::Acquire) {
            return;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let passes = i >= self.start && (i - self.start).is_multiple_of(self.step);
        let Some(last) = self.last else {
            if passes {
                out.push(x, cx);
            }
            return;
        };
        if i > last {
            return;
        }
        // The branch ends once every position up to `last` is through (so an element pushed
        // by another thread never reaches targets that already ended), panic or not.
        let pushed = if passes {
            catch_unwind(AssertUnwindSafe(|| out.push(x, cx)))
        } else {
            Ok(())
        };
        if self.through.fetch_add(1, Ordering::AcqRel) == last {
            self.end_branch(cx);
        }
        if let Err(payload) = pushed {
            resume_unwind(payload);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Passes elements by position, as Python's `list[start:end:step]` and Streamz's
    /// `slice(start, end, step)`: the element at position `i` (from 0) passes when
    /// `start <= i`, `i < end` (if there is an end), and `i - start` is a multiple of `step`.
    /// Negative positions do not exist (they are not supported by Streamz either).
    ///
    /// Once the last element of the slice has passed (and every earlier position is through,
    /// when several threads emit at once), the node ends its branch: what follows it
    /// flushes and ends, as if the upstream had ended (so a `collect` or window after it emits,
    /// and a `close()` has nothing left to wait for there). Later elements are dropped at the
    /// cost of one atomic load, and their tokens released as `filter` releases them. A slice
    /// that can pass nothing (`end <= start`) ends at once.
    ///
    /// Streamz counts the step from position 0 rather than from `start` (its
    /// `slice(1, None, 2)` passes positions 2, 4, ...); brooklet follows Python's list
    /// slicing, as Streamz documents it. The two agree whenever `start` is a multiple of
    /// `step`. With several threads emitting at once, positions are taken in the order the
    /// elements reach the node.
    ///
    /// # Panics
    ///
    /// If `step` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let seen = source.slice(2, Some(7), 2).sink_to_vec();
    /// let head = source.slice(0, Some(3), 1).partition(10).sink_to_vec();
    /// for x in 0..10 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(seen.snapshot(), vec![2, 4, 6]); // [0, 1, ..., 9][2:7:2]
    /// // The second slice ended after its third element: what follows it has flushed.
    /// assert_eq!(head.snapshot(), vec![vec![0, 1, 2]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn slice(&self, start: usize, end: Option<usize>, step: usize) -> Stream<T> {
        assert!(step > 0, "slice: the step must be at least 1");
        let (start, step) = (start as u64, step as u64);
        // A slice that can pass nothing ends at once; otherwise `last` is the position of its
        // last element, if it has an end.
        let empty = end.is_some_and(|end| end as u64 <= start);
        let last = end
            .filter(|_| !empty)
            .map(|end| start + (end as u64 - 1 - start) / step * step);
        let node = self.then_node(
            "slice",
            Slice {
                start,
                step,
                last,
                next: AtomicU64::new(0),
                through: AtomicU64::new(0),
                ended: AtomicBool::new(false),
                node: OnceLock::new(),
                _t: PhantomData,
            },
        );
        let _ = node.op.node.set(Arc::downgrade(&node));
        if empty {
            node.op.end_branch(&mut Cx::new());
        }
        Stream::from_node(node)
    }
}
