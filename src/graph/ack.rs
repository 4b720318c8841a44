//! Acknowledgement tokens: how at-least-once delivery survives nodes that hold elements.
//!
//! An element may be emitted with an [`Ack`]. The token is reference counted: every node that
//! keeps the element (or an output built from it) past the synchronous push keeps a clone, and
//! the token's callback runs when the last clone is dropped. So a token is released exactly
//! when every output built from its element has been accepted downstream, or the element was
//! dropped (filtered out, deduplicated). Streamz does the same with its `RefCounter` metadata;
//! here ownership does the counting.
//!
//! The callback learns how the element ended, as an [`Outcome`]: a holder that loses the
//! element (a panic on its path, a node whose task died, a runtime that shut down, a graph that
//! was closed or dropped under it) marks the token failed before letting it go, and the first
//! failure is what the callback sees. A clone dropped while its thread unwinds from a panic
//! marks the token failed by itself, so a panic on the synchronous path needs no bookkeeping
//! on the hot path.
//!
//! Invariants:
//! - A push carries its tokens in [`Acks`] on the emission context. Nodes that only transform
//!   (map, filter) never touch them, so elements without a token pay nothing.
//! - A node that holds an element stores a clone of the push's [`Acks`] beside it and drops that
//!   clone when the element leaves (is emitted, evicted or discarded). A node that loses an
//!   element calls [`Acks::fail`] before dropping its clone.
//! - An output built from several elements is pushed with the union of their tokens.
//! - A token's outcome only moves from done to failed, never back: the first failure wins,
//!   except that a failure recorded precisely (with the panic message) replaces one recorded
//!   by an unwinding drop, which cannot see the message.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::error::Error;
use super::sync::Lock;

/// How an element ended, as reported to its [`Ack`] callback.
///
/// ```
/// use brooklet::{Error, Outcome};
/// let done = Outcome::Done;
/// assert!(done.is_done());
/// let failed = Outcome::Failed(Error::Closed);
/// assert_eq!(failed.error(), Some(&Error::Closed));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every output built from the element was accepted downstream, or the element was dropped
    /// on purpose (filtered out, deduplicated, replaced by a newer value in `latest`, too late
    /// for every window it belongs to, whether or not a window's `late()` output reads it), or
    /// its error was accepted by an error side output (`try_map`'s `errors`).
    Done,
    /// The element was lost: a function panicked on its path, a node it was held in failed or
    /// was torn down (its runtime shut down, the graph was dropped), or it was emitted into a
    /// closed graph. An at-least-once source must not commit past it.
    Failed(Error),
}

impl Outcome {
    /// Whether the element is done.
    ///
    /// ```
    /// assert!(brooklet::Outcome::Done.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done)
    }

    /// The failure, if the element failed.
    ///
    /// ```
    /// use brooklet::{Error, Outcome};
    /// assert_eq!(Outcome::Done.error(), None);
    /// assert_eq!(Outcome::Failed(Error::Closed).error(), Some(&Error::Closed));
    /// ```
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Done => None,
            Outcome::Failed(e) => Some(e),
        }
    }
}

/// An acknowledgement token that travels with an element through the graph.
///
/// The callback given to [`Ack::new`] runs once, with the element's [`Outcome`], when every
/// output built from the element has been accepted downstream or the element was dropped
/// ([`Outcome::Done`]), or when the element was lost ([`Outcome::Failed`]). Sources of data
/// that must be acknowledged (a Kafka partition offset, a message queue delivery tag) use it
/// to learn when the pipeline is done with an element, and whether it succeeded.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use brooklet::{Ack, Outcome, Source};
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let windows = source.sliding_window(2).sink_to_vec();
///
/// let outcome = Arc::new(Mutex::new(None));
/// let slot = outcome.clone();
/// source.emit_with_ack(1, Ack::new(move |o| *slot.lock().unwrap() = Some(o))).await?;
/// // The window still holds element 1.
/// assert_eq!(*outcome.lock().unwrap(), None);
/// source.emit(2).await?;
/// source.emit(3).await?; // 1 leaves the window
/// assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));
/// assert_eq!(windows.snapshot(), vec![vec![1, 2], vec![2, 3]]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
///
/// A panic on the element's path fails it:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use brooklet::{Ack, Error, Outcome, Source};
/// let source = Source::new();
/// let _doubled = source.map(|x: i32| if x == 0 { panic!("zero") } else { x * 2 }).sink(|_| ());
/// let outcome = Arc::new(Mutex::new(None));
/// let slot = outcome.clone();
/// let emit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     drop(source.emit_with_ack(0, Ack::new(move |o| *slot.lock().unwrap() = Some(o))));
/// }));
/// assert!(emit.is_err()); // the panic reached the caller of `emit`
/// let outcome = outcome.lock().unwrap().clone().unwrap();
/// assert!(matches!(outcome, Outcome::Failed(Error::Panicked { ref node, .. }) if node == "map"));
/// ```
#[derive(Clone)]
pub struct Ack(Arc<AckInner<dyn Release>>);

/// A token's state and its callback, in one allocation: the callback is stored by value (the
/// unsized tail of the struct) rather than boxed, so a token costs one allocation, not two.
struct AckInner<R: ?Sized + Release> {
    /// The first failure, and whether it was recorded precisely (see the module invariants).
    failure: Lock<Option<(Error, bool)>>,
    release: R,
}

/// The callback of a token, called once, with the element's outcome, when the last clone
/// goes.
trait Release: Send + Sync {
    fn release(&mut self, outcome: Outcome);
}

/// `Lock` makes a callback that is only `Send` shareable; it is taken once, in `drop`, where
/// nobody else can hold it, so the lock is never contended.
struct Callback<F>(Lock<Option<F>>);

impl<F: FnOnce(Outcome) + Send> Release for Callback<F> {
    fn release(&mut self, outcome: Outcome) {
        if let Some(f) = self.0.get_mut().take() {
            f(outcome);
        }
    }
}

impl<R: ?Sized + Release> Drop for AckInner<R> {
    fn drop(&mut self) {
        let failure = self.failure.get_mut().take();
        self.release
            .release(failure.map_or(Outcome::Done, |(e, _)| Outcome::Failed(e)));
    }
}

impl Drop for Ack {
    #[inline]
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.mark_unwinding();
        } else if DROPPING_LOST.load(Ordering::Relaxed) != 0 {
            self.mark_lost();
        }
    }
}

impl Ack {
    /// A token whose `on_release` runs, with the element's [`Outcome`], when the pipeline is
    /// done with the element.
    ///
    /// `on_release` runs on whichever thread drops the last clone; it should be quick and must
    /// not panic.
    ///
    /// ```
    /// use brooklet::Ack;
    /// let ack = Ack::new(|outcome| println!("{outcome:?}"));
    /// let copy = ack.clone();
    /// drop(ack);
    /// drop(copy); // prints "Done"
    /// ```
    pub fn new(on_release: impl FnOnce(Outcome) + Send + 'static) -> Ack {
        Ack(Arc::new(AckInner {
            failure: Lock::new(None),
            release: Callback(Lock::new(Some(on_release))),
        }))
    }

    /// Marks the element failed with `error`: when the last clone is dropped, the callback
    /// sees [`Outcome::Failed`]. The first failure wins.
    ///
    /// Code that holds a token outside the graph (a custom sink that writes elsewhere, say)
    /// uses it to report that it could not finish the element.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use brooklet::{Ack, Error, Outcome};
    /// let seen = Arc::new(Mutex::new(None));
    /// let slot = seen.clone();
    /// let ack = Ack::new(move |o| *slot.lock().unwrap() = Some(o));
    /// ack.fail(Error::Closed);
    /// drop(ack);
    /// assert_eq!(*seen.lock().unwrap(), Some(Outcome::Failed(Error::Closed)));
    /// ```
    pub fn fail(&self, error: Error) {
        self.mark(error, true);
    }

    fn mark(&self, error: Error, precise: bool) {
        let mut failure = self.0.failure.lock();
        match &*failure {
            None => *failure = Some((error, precise)),
            Some((_, false)) if precise => *failure = Some((error, true)),
            Some(_) => {}
        }
    }

    /// A clone dropped by [`dropping_lost`] on this thread: its holder lost the element.
    #[cold]
    fn mark_lost(&self) {
        if let Some(error) = LOST.try_with(|l| l.borrow().clone()).ok().flatten() {
            self.mark(error, true);
        }
    }

    /// A clone dropped while its thread unwinds: the element's path panicked.
    #[cold]
    fn mark_unwinding(&self) {
        let node = panic_site().unwrap_or_else(|| "unknown".to_string());
        self.mark(
            Error::Panicked {
                node,
                message: "a function panicked on the element's path (the panic unwound to the \
                          caller, with its message)"
                    .to_string(),
            },
            false,
        );
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("holders", &Arc::strong_count(&self.0))
            .finish()
    }
}

/// How many threads are inside [`dropping_lost`]: while none is, dropping a token costs one
/// relaxed load more than nothing.
static DROPPING_LOST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The failure of the tokens dropped on this thread inside [`dropping_lost`].
    static LOST: RefCell<Option<Error>> = const { RefCell::new(None) };
}

/// Runs `drop_holdings`, which drops what a holder that lost its elements still held (the
/// future of a node task whose runtime shut down): every token dropped on this thread meanwhile
/// fails with `error` rather than being released as done.
pub(crate) fn dropping_lost(error: Error, drop_holdings: impl FnOnce()) {
    struct Reset(Option<Error>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let outer = self.0.take();
            let _ = LOST.try_with(|l| *l.borrow_mut() = outer);
            DROPPING_LOST.fetch_sub(1, Ordering::Relaxed);
        }
    }
    DROPPING_LOST.fetch_add(1, Ordering::Relaxed);
    let outer = LOST
        .try_with(|l| l.borrow_mut().replace(error))
        .ok()
        .flatten();
    let _reset = Reset(outer);
    drop_holdings();
}

thread_local! {
    /// The node whose user function last panicked on this thread (see `note_panic_site`).
    static PANIC_SITE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records that a user function of the node called `node` is unwinding on this thread, so
/// that whoever catches the panic (or a token dropped on the way) can name the node.
#[cold]
pub(crate) fn note_panic_site(node: String) {
    let _ = PANIC_SITE.try_with(|s| *s.borrow_mut() = Some(node));
}

/// The node recorded by [`note_panic_site`], left in place for an outer catch.
pub(crate) fn panic_site() -> Option<String> {
    PANIC_SITE.try_with(|s| s.borrow().clone()).ok().flatten()
}

/// Takes the node recorded by [`note_panic_site`], for a site that caught the panic.
pub(crate) fn take_panic_site() -> Option<String> {
    PANIC_SITE
        .try_with(|s| s.borrow_mut().take())
        .ok()
        .flatten()
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

    /// Marks every token failed with `error` (see [`Ack::fail`]).
    pub(crate) fn fail(&self, error: &Error) {
        self.each(|a| a.fail(error.clone()));
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
