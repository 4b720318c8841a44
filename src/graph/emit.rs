//! The future returned by `emit` and `close`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::cx::Pending;
use super::error::Error;

/// Resolves when every downstream node has accepted an element (or, for
/// [`Source::close`](crate::Source::close), when the graph has drained).
///
/// The element has already been pushed when `emit` returns: awaiting `Emit` is how a producer
/// slows down to the pace of its slowest consumer (backpressure), and dropping it is allowed and
/// loses nothing. Through synchronous nodes only, it is complete on creation and awaiting it
/// costs nothing.
///
/// It resolves to an error when the source was closed or when a node failed on an asynchronous
/// path (see [`Error`]).
///
/// ```
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let seen = source.map(|x: u32| x + 1).sink_to_vec();
/// let pending = source.emit(1);
/// assert!(pending.is_complete()); // only synchronous nodes
/// pending.await?;
/// assert_eq!(seen.snapshot(), vec![2]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
#[must_use = "the element is already pushed; await this future to respect backpressure, or drop it explicitly"]
pub struct Emit {
    state: State,
}

enum State {
    Done(Option<Result<(), Error>>),
    Waiting {
        pending: Vec<Pending>,
        error: Option<Error>,
    },
}

impl Emit {
    #[inline]
    pub(crate) fn ready(result: Result<(), Error>) -> Emit {
        Emit {
            state: State::Done(Some(result)),
        }
    }

    pub(crate) fn waiting(pending: Vec<Pending>, error: Option<Error>) -> Emit {
        Emit {
            state: State::Waiting { pending, error },
        }
    }

    /// Whether the emission is already complete: every node accepted the element at once.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<u8>::new();
    /// assert!(source.emit(1).is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        match &self.state {
            State::Done(_) => true,
            State::Waiting { pending, .. } => pending.is_empty(),
        }
    }
}

impl Future for Emit {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Done(result) => Poll::Ready(result.take().unwrap_or(Ok(()))),
            State::Waiting { pending, error } => {
                pending.retain_mut(|p| match p.as_mut().poll(cx) {
                    Poll::Ready(result) => {
                        if let Err(e) = result {
                            error.get_or_insert(e);
                        }
                        false
                    }
                    Poll::Pending => true,
                });
                if pending.is_empty() {
                    Poll::Ready(error.take().map_or(Ok(()), Err))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl fmt::Debug for Emit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit")
            .field("complete", &self.is_complete())
            .finish()
    }
}
