//! The future returned by `emit` and `close`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::cx::Collected;
use super::error::Error;

/// Resolves when every downstream node has accepted an element (or, for
/// [`Source::close`](crate::Source::close), when the graph has drained).
///
/// The element has already been pushed when `emit` returns: awaiting `Emit` is how a producer
/// slows down to the pace of its slowest consumer (backpressure), and dropping it is allowed and
/// loses nothing. Through synchronous nodes only, it is complete on creation, one pointer wide,
/// and awaiting or dropping it costs nothing.
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
    /// `None`: complete and successful, the synchronous case.
    slow: Option<Box<Collected>>,
}

impl Emit {
    #[inline]
    pub(crate) fn complete() -> Emit {
        Emit { slow: None }
    }

    pub(crate) fn failed(error: Error) -> Emit {
        Emit {
            slow: Some(Box::new(Collected {
                pending: Vec::new(),
                error: Some(error),
            })),
        }
    }

    pub(crate) fn waiting(collected: Box<Collected>) -> Emit {
        Emit {
            slow: Some(collected),
        }
    }

    /// Whether every node accepted the element already: awaiting will not pend.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<u8>::new();
    /// assert!(source.emit(1).is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.slow.as_ref().is_none_or(|c| c.pending.is_empty())
    }
}

impl Future for Emit {
    type Output = Result<(), Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slow.as_mut() {
            None => Poll::Ready(Ok(())),
            Some(c) => poll_collected(c, cx),
        }
    }
}

impl Drop for Emit {
    /// The complete case, an `emit` through synchronous nodes only, is one test inlined into
    /// the caller; only a future that collected waits or an error calls out to drop them.
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(collected) = self.slow.take() {
            drop_collected(collected);
        }
    }
}

#[inline(never)]
fn drop_collected(collected: Box<Collected>) {
    drop(collected);
}

/// The slow half of `Emit::poll`: polls what is pending and reports the first error.
#[inline(never)]
fn poll_collected(c: &mut Collected, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
    let Collected { pending, error } = c;
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

impl fmt::Debug for Emit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emit")
            .field("complete", &self.is_complete())
            .finish()
    }
}
