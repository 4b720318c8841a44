//! `Source::try_emit`: emission for producers that cannot await.
//!
//! `emit` always takes the element (so a dropped `Emit` future loses nothing) and tells the
//! caller to wait when a bounded node is over its bound; a producer that never awaits can
//! therefore fill a bounded node without limit. `try_emit` asks first: it walks the part of the
//! graph the element would reach synchronously and asks every node there whether it has room
//! (`Operator::room`), and pushes only when all of them do. Asking before pushing is what
//! makes it sound under fan-out: once one branch has taken an element, the element can no
//! longer be handed back because another branch is full.
//!
//! The walk follows forward edges from the source through nodes that pass elements on
//! synchronously (map, filter, windows, ...), and stops at nodes that hold elements for a task
//! (buffer, delay, par_map, to_stream, ...): those answer for themselves. Feedback edges are
//! not followed: a push over one never waits.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use super::node::{NodeDyn, Room};

/// Why [`Source::try_emit`](crate::Source::try_emit) did not push an element; it hands the
/// element back.
///
/// ```
/// use brooklet::{Source, TryEmitError};
/// let source = Source::<u32>::new();
/// drop(source.close());
/// match source.try_emit(7) {
///     Err(TryEmitError::Closed(x)) => assert_eq!(x, 7),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TryEmitError<T> {
    /// A bounded node the element would reach is full: pushing it now would make the caller
    /// wait. Try again later (or `emit` and await).
    Full(T),
    /// The source is closed: the element will never be accepted.
    Closed(T),
}

impl<T> TryEmitError<T> {
    /// The element that was not pushed.
    ///
    /// ```
    /// use brooklet::TryEmitError;
    /// assert_eq!(TryEmitError::Full("x").into_inner(), "x");
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TryEmitError::Full(x) | TryEmitError::Closed(x) => x,
        }
    }

    /// Whether a bounded node was full (rather than the source closed).
    ///
    /// ```
    /// use brooklet::TryEmitError;
    /// assert!(TryEmitError::Full(1).is_full());
    /// assert!(!TryEmitError::Closed(1).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TryEmitError::Full(_))
    }
}

impl<T> fmt::Debug for TryEmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryEmitError::Full(_) => f.write_str("Full(..)"),
            TryEmitError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TryEmitError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryEmitError::Full(_) => f.write_str("a bounded node downstream is full"),
            TryEmitError::Closed(_) => f.write_str("the source is closed"),
        }
    }
}

impl<T> std::error::Error for TryEmitError<T> {}

/// Whether every node an element pushed into `start` reaches synchronously has room for it
/// (see the module documentation).
pub(crate) fn has_room(start: Arc<dyn NodeDyn>) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![start];
    while let Some(node) = stack.pop() {
        if !seen.insert(Arc::as_ptr(&node) as *const ()) {
            continue;
        }
        match node.room() {
            Room::Full => return false,
            Room::Free => {}
            Room::PassOn => stack.extend(
                node.links()
                    .into_iter()
                    .filter(|link| !link.feedback)
                    .filter_map(|link| link.node),
            ),
        }
    }
    true
}
