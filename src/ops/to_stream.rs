//! `to_stream`: pull a node's output as a `futures::Stream`.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

use crate::graph::sync::{Lock, until};
use crate::graph::{Acks, Cx, Input, NodeDyn, Operator, Outputs, Room};
use crate::{Error, Item, Stream};

/// How many elements [`Stream::to_stream`] buffers for a slow reader before `emit` pends.
pub const DEFAULT_PULL_CAPACITY: usize = 16;

/// Why an element that the reader never took is lost.
fn never_read(node: String) -> Error {
    Error::Failed {
        node,
        message: "its reader (the stream returned by `to_stream`) was dropped before reading \
                  this element"
            .to_string(),
    }
}

struct State<T> {
    queue: VecDeque<(T, Acks)>,
    ended: bool,
    reader_gone: bool,
    reader: Option<Waker>,
}

struct Shared<T> {
    state: Lock<State<T>>,
    room: Notify,
}

pub(crate) struct PullOp<T> {
    capacity: usize,
    shared: Arc<Shared<T>>,
}

impl<T: Item> Operator for PullOp<T> {
    type Out = ();

    fn on_end(&self, _out: &Outputs<()>, _cx: &mut Cx) {
        let waker = {
            let mut s = self.shared.state.lock();
            s.ended = true;
            s.reader.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn held(&self) -> usize {
        self.shared.state.lock().queue.len()
    }

    fn room(&self) -> Room {
        let s = self.shared.state.lock();
        if s.queue.len() >= self.capacity && !s.reader_gone {
            Room::Full
        } else {
            Room::Free
        }
    }
}

impl<T: Item> Input<0> for PullOp<T> {
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<()>, cx: &mut Cx) {
        let (waker, full) = {
            let mut s = self.shared.state.lock();
            if s.reader_gone {
                drop(s);
                let error = never_read(out.name());
                cx.acks.fail(&error);
                return cx.fail(error);
            }
            s.queue.push_back((x, cx.acks.clone()));
            (s.reader.take(), s.queue.len() > self.capacity)
        };
        if let Some(w) = waker {
            w.wake();
        }
        if full {
            let shared = self.shared.clone();
            let capacity = self.capacity;
            let node = out.name();
            cx.wait(async move {
                until(&shared.room, || {
                    let s = shared.state.lock();
                    s.queue.len() <= capacity || s.reader_gone
                })
                .await;
                // A reader gone before it made room did not read this element (it was behind
                // a full buffer): the wait reports the loss its token reports.
                let gone = shared.state.lock().reader_gone;
                if gone { Err(never_read(node)) } else { Ok(()) }
            });
        }
    }
}

/// A `futures::Stream` of a node's output, returned by [`Stream::to_stream`].
///
/// It ends (`None`) when the node ends: when its source is closed, or when the last handle to
/// its source is dropped.
///
/// Dropping it early is allowed, but what it buffered and every element that reaches the node
/// later are lost: their acknowledgement tokens fail, an `emit` waiting for room resolves
/// with the error, and so does an `emit` that reaches the node afterwards (a consumer that
/// went away must not let a Kafka source upstream commit past what it never read).
///
/// ```
/// use brooklet::{Error, Source};
/// use futures::StreamExt;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let mut reader = source.to_stream();
/// source.emit(1).await?;
/// assert_eq!(reader.next().await, Some(1));
/// drop(reader);
/// assert!(matches!(source.emit(2).await, Err(Error::Failed { .. })));
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct Pull<T> {
    shared: Arc<Shared<T>>,
    /// Names the node in the failures of what is lost when the reader goes.
    node: Arc<dyn NodeDyn>,
}

impl<T> fmt::Debug for Pull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.shared.state.lock();
        f.debug_struct("Pull")
            .field("buffered", &s.queue.len())
            .field("ended", &s.ended)
            .finish()
    }
}

impl<T> futures_util::Stream for Pull<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let next = {
            let mut s = self.shared.state.lock();
            match s.queue.pop_front() {
                Some((x, acks)) => Some((x, acks)),
                None if s.ended => return Poll::Ready(None),
                None => {
                    s.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        self.shared.room.notify_waiters();
        // The reader has the element: its tokens are released here.
        Poll::Ready(next.map(|(x, _acks)| x))
    }
}

impl<T> Drop for Pull<T> {
    fn drop(&mut self) {
        let unread = {
            let mut s = self.shared.state.lock();
            s.reader_gone = true;
            std::mem::take(&mut s.queue)
        };
        if !unread.is_empty() {
            let error = never_read(self.node.meta().name());
            for (_, acks) in &unread {
                acks.fail(&error);
            }
        }
        drop(unread);
        self.shared.room.notify_waiters();
    }
}

impl<T: Item> Stream<T> {
    /// A pull adapter: the node's output as a [`futures::Stream`](futures_util::Stream), buffering up to
    /// [`DEFAULT_PULL_CAPACITY`] elements for a slow reader (then `emit` pends). A reader
    /// dropped early loses what it has not read, and says so (see [`Pull`]).
    ///
    /// ```
    /// use brooklet::Source;
    /// use futures::StreamExt;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let mut doubled = source.map(|x: i32| x * 2).to_stream();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// source.close().await?;
    /// assert_eq!(doubled.next().await, Some(2));
    /// assert_eq!(doubled.next().await, Some(4));
    /// assert_eq!(doubled.next().await, None);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn to_stream(&self) -> Pull<T> {
        self.to_stream_bounded(DEFAULT_PULL_CAPACITY)
    }

    /// Like [`to_stream`](Self::to_stream), buffering up to `capacity` elements.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// use futures::StreamExt;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let mut pull = source.to_stream_bounded(1);
    /// assert!(source.emit(1).is_complete());
    /// let second = source.emit(2); // over capacity: pends until the reader catches up
    /// assert!(!second.is_complete());
    /// assert_eq!(pull.next().await, Some(1));
    /// second.await?;
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn to_stream_bounded(&self, capacity: usize) -> Pull<T> {
        assert!(capacity > 0, "to_stream: the capacity must be at least 1");
        let shared = Arc::new(Shared {
            state: Lock::new(State {
                queue: VecDeque::new(),
                ended: false,
                reader_gone: false,
                reader: None,
            }),
            room: Notify::new(),
        });
        let node = self.then_node(
            "to_stream",
            PullOp {
                capacity,
                shared: shared.clone(),
            },
        );
        Pull { shared, node }
    }
}
