//! The crate's error type.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// What can go wrong when pushing data through a graph.
///
/// Synchronous failures (a panic in a `map` closure, say) are not errors: they unwind straight
/// into the caller of [`Source::emit`](crate::Source::emit), as an exception does in Streamz.
/// `Error` reports what the caller cannot see on its own stack: a closed source, or a failure on
/// an asynchronous path (a spawned task, a worker thread), which is reported on the next `emit`
/// that reaches the failed node, or by [`Source::close`](crate::Source::close).
///
/// ```
/// use brooklet::{Error, Source};
/// # futures::executor::block_on(async {
/// let source = Source::<i32>::new();
/// source.close().await.unwrap();
/// assert_eq!(source.emit(1).await, Err(Error::Closed));
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The source was closed; the element was not pushed.
    Closed,
    /// A user function panicked on an asynchronous path.
    Panicked {
        /// Name of the node whose function panicked.
        node: String,
        /// The panic message.
        message: String,
    },
    /// A node failed for another reason (its task was cancelled, its runtime shut down).
    Failed {
        /// Name of the node that failed.
        node: String,
        /// What went wrong.
        message: String,
    },
    /// [`Source::run`](crate::Source::run) was called on a source that has nothing to drive,
    /// or whose input is already being driven.
    NotRunnable,
    /// A node failed several times before a call could report it: the first failure, and how
    /// many more came after it. None is folded away silently.
    ///
    /// ```
    /// use brooklet::Error;
    /// let e = Error::Several { first: Box::new(Error::Closed), more: 2 };
    /// assert_eq!(e.to_string(), "the source is closed (and 2 more failures after it)");
    /// assert_eq!(e.first(), &Error::Closed);
    /// ```
    Several {
        /// The first failure.
        first: Box<Error>,
        /// How many failures came after it before it was reported.
        more: usize,
    },
}

impl Error {
    /// The first failure: `self`, or for [`Error::Several`] the first of them.
    ///
    /// ```
    /// use brooklet::Error;
    /// assert_eq!(Error::Closed.first(), &Error::Closed);
    /// ```
    pub fn first(&self) -> &Error {
        match self {
            Error::Several { first, .. } => first.first(),
            e => e,
        }
    }

    /// Builds [`Error::Panicked`] from a caught panic payload.
    pub(crate) fn panicked(node: &str, payload: &(dyn Any + Send)) -> Error {
        Error::Panicked {
            node: node.to_string(),
            message: panic_message(payload),
        }
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<Arc<str>>() {
        s.to_string()
    } else {
        "panic with a non-string payload".to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Closed => f.write_str("the source is closed"),
            Error::Panicked { node, message } => {
                write!(f, "a function in node `{node}` panicked: {message}")
            }
            Error::Failed { node, message } => write!(f, "node `{node}` failed: {message}"),
            Error::NotRunnable => {
                f.write_str("this source has no input to drive, or it is already being driven")
            }
            Error::Several { first, more } => {
                write!(f, "{first} (and {more} more failures after it)")
            }
        }
    }
}

impl std::error::Error for Error {}
