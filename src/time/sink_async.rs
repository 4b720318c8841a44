//! `sink_async`: a sink whose function returns a future, run one element at a time.
//!
//! Why: the end of a pipeline is often I/O (a database write, an HTTP call). Awaiting it on the
//! caller's push would block the producer's thread; spawning a future per element would drop
//! backpressure. So the sink accepts each element into a [`Mailbox`] (a dropped `emit` future
//! loses nothing) and its task runs `f(x).await` one element at a time; the `emit` that
//! delivered `x` resolves once `f(x)` has completed, as `map` over a coroutine does in Streamz.
//!
//! Invariants:
//! - Elements are processed one at a time, in arrival order.
//! - An element's `emit` resolves when its future has completed; its tokens are released then.
//! - A panic in `f` or in its future is caught, counted, and reported on the next `emit` or by
//!   `close()`; the elements after it are still processed.
//! - `close()` resolves once every accepted element has been processed.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Notify;

use crate::graph::sync::{Lock, until};
use crate::graph::task::{Detach, Mailbox, Task, runtime};
use crate::graph::{Cx, Input, NodeDyn, Operator, Outputs, Room, metrics_of};
use crate::{Item, Metrics, Stream};

#[derive(Default)]
struct Progress {
    accepted: u64,
    processed: u64,
    /// The task has ended: nothing accepted now will ever be processed.
    ended: bool,
}

struct Shared {
    progress: Lock<Progress>,
    done: Notify,
}

/// Held by the task: marks it ended and wakes every waiting `emit` when the task returns,
/// unwinds or is dropped, so that no `emit` waits for an element that will never be processed.
struct Ended(Arc<Shared>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.progress.lock().ended = true;
        self.0.done.notify_waiters();
    }
}

pub(crate) struct SinkAsync<T> {
    mailbox: Arc<Mailbox<T>>,
    shared: Arc<Shared>,
    task: Arc<Task>,
    _t: PhantomData<fn(T)>,
}

impl<T: Item> Operator for SinkAsync<T> {
    type Out = ();
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<()>, cx: &mut Cx) {
        self.mailbox.close();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        let p = self.shared.progress.lock();
        (p.accepted - p.processed) as usize
    }

    /// Busy while an element is waiting or being processed: every push waits for its element.
    fn room(&self) -> Room {
        let p = self.shared.progress.lock();
        if p.accepted > p.processed && !p.ended {
            Room::Full
        } else {
            Room::Free
        }
    }
}

impl<T: Item> Input<0> for SinkAsync<T> {
    type In = T;

    fn on_input(&self, x: T, _out: &Outputs<()>, cx: &mut Cx) {
        self.task.report(cx);
        // Numbered under the progress lock so that numbers follow mailbox order.
        let ticket = {
            let mut p = self.shared.progress.lock();
            self.mailbox.put(x, cx);
            p.accepted += 1;
            p.accepted
        };
        let shared = self.shared.clone();
        // Resolves once this element has been processed, not merely taken: during `close()`
        // the box is drained while the last element is still being written.
        cx.wait(async move {
            until(&shared.done, || {
                let p = shared.progress.lock();
                p.processed >= ticket || p.ended
            })
            .await;
            Ok(())
        });
    }
}

impl<T: Item> Detach for SinkAsync<T> {
    fn detach(&self) {
        self.mailbox.close();
    }
}

/// Handle to a sink made by [`Stream::sink_async`]. Keeping it is optional: the sink lives as
/// long as its upstream.
pub struct AsyncSink {
    node: Arc<dyn NodeDyn>,
}

impl AsyncSink {
    /// The sink's name (`"sink_async"` unless renamed).
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = Source::<u8>::new();
    /// assert_eq!(source.sink_async(|_| async {}).name(), "sink_async");
    /// # }
    /// ```
    pub fn name(&self) -> String {
        self.node.meta().name()
    }

    /// Renames the sink and returns it.
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = Source::<u8>::new();
    /// let sink = source.sink_async(|_| async {}).named("writer");
    /// assert!(source.to_dot().contains("writer"));
    /// # }
    /// ```
    pub fn named(self, name: impl Into<String>) -> AsyncSink {
        self.node.meta().set_name(name.into());
        self
    }

    /// The sink's counters: `held` is the number of accepted elements not yet processed, and
    /// `errors` counts panics in the function or its futures.
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let sink = source.sink_async(|_: u8| async {});
    /// source.emit(1).await?;
    /// assert_eq!(sink.metrics().received, 1);
    /// assert_eq!(sink.metrics().held, 0);
    /// # Ok(()) }
    /// ```
    pub fn metrics(&self) -> Metrics {
        metrics_of(&*self.node)
    }
}

impl fmt::Debug for AsyncSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSink")
            .field("name", &self.name())
            .finish()
    }
}

impl<T: Item> Stream<T> {
    /// Ends the stream in an asynchronous function: for each element, in order and one at a
    /// time, awaits `f(x)` on a task of the ambient tokio runtime. The `emit` that delivered
    /// `x` resolves once `f(x)` has completed, so a producer that awaits `emit` runs at the
    /// sink's pace. Dropping that future loses nothing: the element was accepted already.
    ///
    /// A panic in `f` or its future is reported on the next `emit` (or by `close()`), and the
    /// elements after it are still processed. `close()` resolves once every element has been
    /// processed. Tokens are released once the element has been processed.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::Instant;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let start = Instant::now();
    /// let written = Arc::new(Mutex::new(Vec::new()));
    /// let w = written.clone();
    /// let source = Source::new();
    /// source.sink_async(move |x: u32| {
    ///     let w = w.clone();
    ///     async move {
    ///         tokio::time::sleep(Duration::from_millis(10)).await; // a slow write
    ///         w.lock().unwrap().push((x, start.elapsed().as_millis()));
    ///     }
    /// });
    /// for x in 1..=3 {
    ///     source.emit(x).await?; // resolves once x is written
    /// }
    /// assert_eq!(*written.lock().unwrap(), vec![(1, 10), (2, 20), (3, 30)]);
    /// # Ok(()) }
    /// ```
    pub fn sink_async<F, Fut>(&self, f: F) -> AsyncSink
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rt = runtime("sink_async");
        let mailbox = Mailbox::new(usize::MAX);
        let shared = Arc::new(Shared {
            progress: Lock::new(Progress::default()),
            done: Notify::new(),
        });
        let task = Task::new("sink_async");
        mailbox.fail_with(&task);
        let node = self.then_detachable(
            "sink_async",
            SinkAsync {
                mailbox: mailbox.clone(),
                shared: shared.clone(),
                task: task.clone(),
                _t: PhantomData,
            },
        );
        task.bind(node.clone());
        let worker = node.clone();
        let t = task.clone();
        // Made here, not in the task's body: a task dropped before its first poll (its runtime
        // shut down first) drops it too, which releases the emits waiting for their writes.
        let ended = Ended(shared.clone());
        task.spawn(&rt, async move {
            let _ended = ended;
            while let Some((x, acks)) = mailbox.recv().await {
                let run = AssertUnwindSafe(async { f(x).await }).catch_unwind().await;
                if let Err(payload) = run {
                    worker.out.errors.inc_exact();
                    let error = t.panicked_here(&*payload);
                    acks.fail(&error);
                    t.fail(error);
                }
                drop(acks);
                shared.progress.lock().processed += 1;
                shared.done.notify_waiters();
            }
        });
        AsyncSink { node }
    }
}
