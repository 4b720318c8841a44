//! `Source` as a `futures::Sink`: so `stream.forward(source)` and `SinkExt::send_all` feed a
//! graph, with the graph's backpressure.
//!
//! `start_send` emits at once (the element is pushed through the synchronous nodes there and
//! then, as with [`Source::emit`]) and keeps the returned [`Emit`]; `poll_ready` and
//! `poll_flush` wait for it, so the next element is sent only once the graph accepted the
//! previous one. `poll_close` closes the source, which ends the graph for every handle.
//!
//! Invariant: the state lives in the handle that is used as a sink, not in what its clones
//! share, so two clones used as sinks from two tasks never wait on each other's elements.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Item;
use super::emit::Emit;
use super::error::Error;
use super::source::Source;

/// What a handle used as a sink is waiting for.
#[derive(Default)]
pub(crate) struct SinkState {
    /// The last emission (or the close), until it has resolved.
    pending: Option<Emit>,
    /// `poll_close` has started the close; `pending` holds its future.
    closing: bool,
}

impl SinkState {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(emit) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let result = std::task::ready!(Pin::new(emit).poll(cx));
        self.pending = None;
        Poll::Ready(result)
    }
}

/// A source is a [`futures::Sink`](futures_util::Sink): `stream.forward(source)` drives a graph from any
/// `futures::Stream` and closes it at the end, and [`SinkExt::send`](futures_util::SinkExt::send) /
/// [`send_all`](futures_util::SinkExt::send_all) feed it without closing it. Each element is sent
/// only once the graph has accepted the previous one (backpressure), and a failure reported by
/// the graph ends the sending with that [`Error`].
///
/// Closing the sink closes the source itself, for every handle: use a clone, as below, and
/// keep the original to build on.
///
/// ```
/// use brooklet::Source;
/// use futures::{SinkExt, StreamExt};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let seen = source.map(|x: u32| x * 2).buffer(2).sink_to_vec();
///
/// // Feed without closing...
/// let mut sink = source.clone();
/// sink.send(1).await?;
/// sink.send_all(&mut futures::stream::iter([2, 3]).map(Ok)).await?;
/// // ...or forward a whole stream, which closes the source at its end.
/// futures::stream::iter([4, 5]).map(Ok).forward(source.clone()).await?;
///
/// assert!(source.is_closed());
/// assert_eq!(seen.snapshot(), vec![2, 4, 6, 8, 10]);
/// # Ok(()) }
/// ```
impl<T: Item> futures_util::Sink<T> for Source<T> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().sink.get_mut().poll_pending(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Error> {
        let this = self.get_mut();
        let emit = this.emit(item);
        this.sink.get_mut().pending = Some(emit);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().sink.get_mut().poll_pending(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        if !this.sink.get_mut().closing {
            // Wait for the last element first: its failure is the one to report.
            std::task::ready!(this.sink.get_mut().poll_pending(cx))?;
            let close = this.close();
            let state = this.sink.get_mut();
            state.closing = true;
            state.pending = Some(close);
        }
        this.sink.get_mut().poll_pending(cx)
    }
}
