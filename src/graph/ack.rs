//! Acknowledgement tokens: how at-least-once delivery survives nodes that hold elements.
//!
//! An element may be emitted with an [`Ack`]. The token is reference counted: every node that
//! keeps the element (or an output built from it) past the synchronous push keeps a clone, and
//! the token's release callback runs when the last clone is dropped. So a token is released
//! exactly when every output built from its element has been accepted downstream, or the element
//! was dropped (filtered out, deduplicated). Streamz does the same with its `RefCounter`
//! metadata; here ownership does the counting.
//!
//! Invariants:
//! - A push carries its tokens in [`Acks`] on the emission context. Nodes that only transform
//!   (map, filter) never touch them, so elements without a token pay nothing.
//! - A node that holds an element stores a clone of the push's [`Acks`] beside it and drops that
//!   clone when the element leaves (is emitted, evicted or discarded).
//! - An output built from several elements is pushed with the union of their tokens.

use std::fmt;
use std::sync::Arc;

use super::sync::Lock;

/// An acknowledgement token that travels with an element through the graph.
///
/// The callback given to [`Ack::new`] runs once, when every output built from the element has
/// been accepted downstream, or when the element was dropped. Sources of data that must be
/// acknowledged (a Kafka partition offset, a message queue delivery tag) use it to learn when
/// the pipeline is done with an element.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use brooklet::{Ack, Source};
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let windows = source.sliding_window(2).sink_to_vec();
///
/// let released = Arc::new(AtomicBool::new(false));
/// let flag = released.clone();
/// source.emit_with_ack(1, Ack::new(move || flag.store(true, Ordering::SeqCst))).await?;
/// // The window still holds element 1.
/// assert!(!released.load(Ordering::SeqCst));
/// source.emit(2).await?;
/// source.emit(3).await?; // 1 leaves the window
/// assert!(released.load(Ordering::SeqCst));
/// assert_eq!(windows.snapshot(), vec![vec![1, 2], vec![2, 3]]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct Ack(Arc<AckInner>);

struct AckInner(Lock<Option<Box<dyn FnOnce() + Send>>>);

impl Drop for AckInner {
    fn drop(&mut self) {
        if let Some(release) = self.0.lock().take() {
            release();
        }
    }
}

impl Ack {
    /// A token whose `on_release` runs when the pipeline is done with the element.
    ///
    /// `on_release` runs on whichever thread drops the last clone; it should be quick and must
    /// not panic.
    ///
    /// ```
    /// use brooklet::Ack;
    /// let ack = Ack::new(|| println!("done"));
    /// let copy = ack.clone();
    /// drop(ack);
    /// drop(copy); // prints "done"
    /// ```
    pub fn new(on_release: impl FnOnce() + Send + 'static) -> Ack {
        Ack(Arc::new(AckInner(Lock::new(Some(Box::new(on_release))))))
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("holders", &Arc::strong_count(&self.0))
            .finish()
    }
}

/// The set of tokens an element (or an output built from several elements) carries.
#[derive(Clone, Default, Debug)]
pub(crate) enum Acks {
    /// No token: the common, free case.
    #[default]
    None,
    One(Ack),
    Many(Arc<[Ack]>),
}

impl Acks {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Acks::None)
    }

    fn each(&self, mut f: impl FnMut(&Ack)) {
        match self {
            Acks::None => {}
            Acks::One(a) => f(a),
            Acks::Many(all) => all.iter().for_each(f),
        }
    }

    /// The union of `self` and `other`.
    pub(crate) fn merge(&self, other: &Acks) -> Acks {
        match (self, other) {
            (Acks::None, x) | (x, Acks::None) => x.clone(),
            _ => Acks::union([self, other]),
        }
    }

    /// The union of every set in `sets`; allocates only when more than one token results.
    pub(crate) fn union<'a>(sets: impl IntoIterator<Item = &'a Acks>) -> Acks {
        let mut all = Vec::new();
        for set in sets {
            set.each(|a| all.push(a.clone()));
        }
        match all.len() {
            0 => Acks::None,
            1 => Acks::One(all.pop().expect("one token")),
            _ => Acks::Many(all.into()),
        }
    }
}
