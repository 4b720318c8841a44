//! Sources: where elements enter a graph.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;

use futures_util::future::{self, Either};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::Notify;

use super::Item;
use super::ack::{Ack, Acks, take_panic_site};
use super::cx::Cx;
use super::edges::Outputs;
use super::emit::Emit;
use super::error::Error;
use super::node::{Input, Node, Operator};
use super::source_sink::SinkState;
use super::stream::Stream;
use super::sync::{Lock, until};
use super::try_emit::{self, TryEmitError};

type Driver<T> = Pin<Box<dyn futures_util::Stream<Item = T> + Send>>;

pub(crate) struct SourceOp<T> {
    closed: AtomicBool,
    /// A panic that interrupted `close()`'s flush: every later `close()` reports it.
    close_failure: Lock<Option<Error>>,
    /// Wakes a running `run` when the source ends, so it stops without waiting for its input.
    ended: Notify,
    driver: Lock<Option<Driver<T>>>,
    _t: PhantomData<fn(T)>,
}

impl<T: Item> Operator for SourceOp<T> {
    type Out = T;
    // A source passes on every element it takes, so its `emitted` is derived from `received`
    // (one counter update per emit instead of two); elements refused after the end count as
    // skipped.
    const PASSES_EACH: bool = true;

    fn on_end(&self, _out: &Outputs<T>, _cx: &mut Cx) {
        self.closed.store(true, Ordering::Release);
        self.ended.notify_waiters();
    }
}

impl<T: Item> Input<0> for SourceOp<T> {
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<T>, cx: &mut Cx) {
        // Elements that reach a closed source through `connect` are dropped, and their tokens
        // fail: the graph ended under them.
        if !self.closed.load(Ordering::Acquire) {
            out.pass(x, cx);
        } else {
            out.skipped.inc();
            cx.acks.fail(&Error::Closed);
        }
    }

    #[inline]
    fn on_batch(&self, xs: Vec<T>, out: &Outputs<T>, cx: &mut Cx) {
        if !self.closed.load(Ordering::Acquire) {
            out.pass_batch(xs, cx);
        } else {
            out.skipped.add(xs.len());
            cx.acks.fail(&Error::Closed);
        }
    }
}

/// The entry point of a graph: elements pushed with [`emit`](Source::emit) flow to every node
/// built on it.
///
/// A `Source<T>` dereferences to a [`Stream<T>`], so every operator is available on it. Handles
/// are cheap to clone and can be shared across threads and tasks. The graph lives as long as a
/// handle to its source (or to any node) does; [`close`](Source::close) ends it: windows and
/// buffers flush, pending work drains, then the returned future resolves.
///
/// Dropping the last clone of a `Source` ends the graph as `close()` does: windows flush,
/// [`to_stream`](Stream::to_stream) readers see the end, background tasks drain what they hold
/// and stop, and nodes nobody holds are freed. (A [`Stream`] handle to the source, such as
/// `(*source).clone()`, does not count: it cannot emit.) Nobody is left to await that end, so
/// a failure it reports is logged through `tracing`. A source that `connect` feeds from
/// other nodes stays open until those have ended too.
///
/// ```
/// use brooklet::Source;
/// use futures::StreamExt;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let mut pairs = source.partition(2).to_stream();
/// for x in 1..=3 {
///     source.emit(x).await?;
/// }
/// drop(source); // as `close()`: the partial batch is flushed and the reader sees the end
/// assert_eq!(pairs.next().await, Some(vec![1, 2]));
/// assert_eq!(pairs.next().await, Some(vec![3]));
/// assert_eq!(pairs.next().await, None);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
///
/// ```
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let total = source
///     .map(|x: u64| x * 2)
///     .filter(|x| x % 3 == 0)
///     .accumulate(0, |a, x| a + x)
///     .sink_to_vec();
/// for x in 1..=6 {
///     source.emit(x).await?;
/// }
/// source.close().await?;
/// assert_eq!(total.snapshot(), vec![6, 18]);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct Source<T: Item> {
    pub(crate) node: Arc<Node<SourceOp<T>>>,
    stream: Stream<T>,
    /// Shared by every clone of this handle; dropped with the last one.
    handle: Arc<Handle<T>>,
    /// This handle's own state as a `futures::Sink` (see `source_sink`); never shared.
    pub(crate) sink: Lock<SinkState>,
}

impl<T: Item> Clone for Source<T> {
    fn clone(&self) -> Self {
        Source {
            node: self.node.clone(),
            stream: self.stream.clone(),
            handle: self.handle.clone(),
            sink: Lock::default(),
        }
    }
}

/// A handle to a [`Source`] that does not keep it, or its graph, alive: for a function inside
/// the graph that emits back into its own source, or closes it.
///
/// A function that holds a `Source` of its own graph makes a cycle of strong references (the
/// source holds the graph, the graph holds the function, the function holds the source): as
/// with a cycle of `Arc`s, the graph is then never freed, even after `close()`. Such a
/// function holds a `WeakSource` instead and [`upgrade`](WeakSource::upgrade)s it when it
/// needs the source; once every `Source` handle is gone, the source ends as it would without
/// the weak one, and `upgrade` returns `None`.
///
/// An emit made this way runs inside the push that caused it (depth first), so every turn of
/// such a loop takes more stack. A loop of many turns is built with
/// [`connect`](Stream::connect) instead: it runs in constant stack (breadth first), and its
/// feedback edge does not keep the graph alive either.
///
/// ```
/// use brooklet::Source;
/// # futures::executor::block_on(async {
/// // Counts down: every element above 0 sends the next one back into the source.
/// let source = Source::new();
/// let back = source.downgrade();
/// let seen = source.sink_to_vec();
/// source.filter(|x: &u32| *x > 0).sink(move |x| {
///     if let Some(source) = back.upgrade() {
///         drop(source.emit(x - 1));
///     }
/// });
/// source.emit(3).await?;
/// assert_eq!(seen.snapshot(), vec![3, 2, 1, 0]);
/// let weak = source.downgrade();
/// drop(source);
/// assert!(weak.upgrade().is_none(), "nothing keeps the graph alive");
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct WeakSource<T: Item>(Weak<Handle<T>>);

impl<T: Item> WeakSource<T> {
    /// The source, if a [`Source`] handle to it still exists.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<u8>::new();
    /// let weak = source.downgrade();
    /// assert!(weak.upgrade().is_some());
    /// drop(source);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Source<T>> {
        let handle = self.0.upgrade()?;
        let node = handle.0.clone();
        Some(Source {
            stream: Stream::from_node(node.clone()),
            node,
            handle,
            sink: Lock::default(),
        })
    }
}

impl<T: Item> Clone for WeakSource<T> {
    fn clone(&self) -> Self {
        WeakSource(self.0.clone())
    }
}

impl<T: Item> fmt::Debug for WeakSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSource")
            .field("alive", &(self.0.strong_count() > 0))
            .finish()
    }
}

/// What the clones of one `Source` share: when the last of them is dropped, nothing can emit
/// into the source any more, so it ends as `close()` would end it, unless forward connections
/// still feed it (it then ends when they have all ended, as any source fed by `connect` does).
struct Handle<T: Item>(Arc<Node<SourceOp<T>>>);

impl<T: Item> Drop for Handle<T> {
    fn drop(&mut self) {
        let node = &self.0;
        if node.meta.is_done() || !node.meta.upstreams_ended() {
            return;
        }
        let mut cx = Cx::new();
        // A panic in a flush must not escape a destructor (it would abort while unwinding).
        let flushed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| node.finish(&mut cx)));
        match flushed {
            Ok(()) => report_dropped_close(node.meta.name(), cx.into_emit()),
            Err(payload) => tracing::error!(
                source = %node.meta.name(),
                message = %super::error::panic_message(&*payload),
                "a function panicked while the graph ended, on the drop of its last source handle"
            ),
        }
    }
}

/// Logs what the end of a graph whose handles were dropped reports: nobody is left to await
/// it. What is still draining (buffers, tasks) is awaited on the ambient runtime, if any.
fn report_dropped_close(source: String, emit: Emit) {
    use futures_util::FutureExt;
    let log = move |result: Result<(), Error>| {
        if let Err(error) = result {
            tracing::warn!(
                %source,
                %error,
                "a failure reported at the end of a graph whose source handles were dropped"
            );
        }
    };
    if emit.is_complete() {
        if let Some(result) = emit.now_or_never() {
            log(result);
        }
    } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(emit.map(log));
    }
}

impl<T: Item> Deref for Source<T> {
    type Target = Stream<T>;

    fn deref(&self) -> &Stream<T> {
        &self.stream
    }
}

impl<T: Item> Default for Source<T> {
    fn default() -> Self {
        Source::new()
    }
}

impl<T: Item> fmt::Debug for Source<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.stream.name())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T: Item> Source<T> {
    /// A new source with nothing downstream yet.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<String>::new();
    /// assert!(!source.is_closed());
    /// ```
    pub fn new() -> Source<T> {
        Source::with_driver(None)
    }

    /// A handle that does not keep the source alive (see [`WeakSource`]): for a function
    /// inside the graph that emits into its own source.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<u8>::new();
    /// let weak = source.downgrade();
    /// assert!(weak.upgrade().is_some_and(|s| !s.is_closed()));
    /// ```
    pub fn downgrade(&self) -> WeakSource<T> {
        WeakSource(Arc::downgrade(&self.handle))
    }

    fn with_driver(driver: Option<Driver<T>>) -> Source<T> {
        let node = Arc::new(Node::new(
            "source",
            SourceOp {
                closed: AtomicBool::new(false),
                close_failure: Lock::new(None),
                ended: Notify::new(),
                driver: Lock::new(driver),
                _t: PhantomData,
            },
        ));
        let stream = Stream::from_node(node.clone());
        let handle = Arc::new(Handle(node.clone()));
        Source {
            node,
            stream,
            handle,
            sink: Lock::default(),
        }
    }

    /// A source that [`run`](Source::run) fills from `iter`, then closes.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::from_iter(1..=3);
    /// let seen = source.map(|x: i32| x * x).sink_to_vec();
    /// source.run().await?;
    /// assert_eq!(seen.snapshot(), vec![1, 4, 9]);
    /// assert!(source.is_closed());
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(iter: I) -> Source<T>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        Source::with_driver(Some(Box::pin(futures_util::stream::iter(iter))))
    }

    /// A source that [`run`](Source::run) fills from an asynchronous stream, awaiting each
    /// emission before it polls the next item (backpressure), then closes.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let input = futures::stream::iter(vec!["a", "b"]);
    /// let source = Source::from_stream(input);
    /// let seen = source.map(|s: &str| s.to_uppercase()).sink_to_vec();
    /// source.run().await?;
    /// assert_eq!(seen.snapshot(), vec!["A", "B"]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn from_stream(stream: impl futures_util::Stream<Item = T> + Send + 'static) -> Source<T> {
        Source::with_driver(Some(Box::pin(stream)))
    }

    /// Drives the input given to [`from_iter`](Source::from_iter) or
    /// [`from_stream`](Source::from_stream): emits every item, awaiting each emission, then
    /// closes the source and waits for the graph to drain.
    ///
    /// The returned future owns what it needs (`'static`), so it can be spawned. It stops early
    /// without error if the source is closed meanwhile, and stops with the error if an emission
    /// reports one. A panic on the way (in a function on the synchronous path, in the input
    /// stream, or while the graph flushes at the end) does not unwind out of `run`: it stops
    /// with [`Error::Panicked`], naming the node. Either way the source is closed first, so
    /// what the graph holds is flushed. Fails with [`Error::NotRunnable`] when the source has
    /// no input or another `run` already took it.
    ///
    /// ```
    /// use brooklet::{Error, Source};
    /// # futures::executor::block_on(async {
    /// let source = Source::<i32>::new();
    /// assert_eq!(source.run().await, Err(Error::NotRunnable));
    /// # });
    /// ```
    pub fn run(&self) -> impl std::future::Future<Output = Result<(), Error>> + Send + use<T> {
        let this = self.clone();
        let driver = self.node.op.driver.lock().take();
        async move {
            let Some(mut input) = driver else {
                return Err(Error::NotRunnable);
            };
            loop {
                let next = {
                    let ended = until(&this.node.op.ended, || this.is_closed());
                    let next = AssertUnwindSafe(input.next()).catch_unwind();
                    match future::select(pin!(next), pin!(ended)).await {
                        Either::Left((Ok(next), _)) => next,
                        Either::Left((Err(payload), _)) => {
                            let e = Error::panicked(&this.name(), &*payload);
                            return this.stop_with(e).await;
                        }
                        // Closed meanwhile: stop now rather than at the input's next item.
                        Either::Right(((), _)) => return Ok(()),
                    }
                };
                let Some(x) = next else { break };
                let emitted = match catch_unwind(AssertUnwindSafe(|| this.emit(x))) {
                    Ok(emit) => emit.await,
                    Err(payload) => {
                        let node = take_panic_site().unwrap_or_else(|| this.name());
                        Err(Error::panicked(&node, &*payload))
                    }
                };
                match emitted {
                    Ok(()) => {}
                    Err(Error::Closed) => return Ok(()),
                    Err(e) => return this.stop_with(e).await,
                }
            }
            this.close_caught().await
        }
    }

    /// Ends a `run` that failed with `error`: closes the source (flushing what the graph
    /// holds) and returns the error.
    async fn stop_with(&self, error: Error) -> Result<(), Error> {
        let _ = self.close_caught().await;
        Err(error)
    }

    /// Closes the source and waits for the graph to drain, as [`close`](Source::close) does,
    /// for the drivers of a source (`run`): a panic of the final flush, which `close` lets
    /// unwind, becomes the [`Error::Panicked`] that `close` recorded, naming where it began.
    pub(crate) async fn close_caught(&self) -> Result<(), Error> {
        let caught = |payload: Box<dyn std::any::Any + Send>| {
            let recorded = self.node.op.close_failure.lock().clone();
            recorded.unwrap_or_else(|| Error::panicked(&self.name(), &*payload))
        };
        match catch_unwind(AssertUnwindSafe(|| self.close())) {
            Ok(emit) => AssertUnwindSafe(emit)
                .catch_unwind()
                .await
                .unwrap_or_else(|p| Err(caught(p))),
            Err(payload) => Err(caught(payload)),
        }
    }

    /// Pushes `x` through every synchronous node now, and returns a future that resolves when
    /// every downstream node has accepted it. See [`Emit`].
    ///
    /// `emit` always takes the element, even when a bounded node downstream (a `buffer`, a
    /// `par_map`, a `to_stream` reader...) is over its bound: the future then pends until that
    /// node has room again, and dropping it loses nothing. So the bounds hold for a producer
    /// that awaits each `emit`; one that drops the futures without awaiting them can make a
    /// bounded node hold any number of elements. A producer that cannot await uses
    /// [`try_emit`](Source::try_emit), which hands the element back instead.
    ///
    /// # Panics
    ///
    /// A panic in a user function on the synchronous path unwinds into this call, as an
    /// exception does in Streamz. The graph stays usable for the next element.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let seen = source.sink_to_vec();
    /// source.emit("hello").await?;
    /// assert_eq!(seen.snapshot(), vec!["hello"]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    #[inline]
    pub fn emit(&self, x: T) -> Emit {
        self.emit_in(x, Cx::new())
    }

    /// Pushes `x` only if no bounded node it would reach is full: for producers that cannot
    /// await (a callback, a synchronous thread), as tokio's `mpsc::Sender::try_send` is.
    ///
    /// Before it pushes anything, it asks every node that `x` would reach synchronously
    /// whether it has room: queues drained by a task (`buffer`, `delay`, `rate_limit`,
    /// `timed_window`), `par_map` and `map_async`, `sink_async` and `to_stream` readers. If
    /// one is full, `x` goes to none of them and comes back in [`TryEmitError::Full`]; a fan-out
    /// is never half-delivered. If the source is closed, `x` comes back in
    /// [`TryEmitError::Closed`]. Otherwise `x` is pushed as by [`emit`](Source::emit) and the
    /// [`Emit`] is returned: usually complete already, it may still pend if another producer
    /// filled a node between the check and the push (or for a `sink_async`, which answers
    /// once the element is written); dropping it loses nothing. The rule is conservative: a
    /// full node counts even if a `filter` before it would have dropped `x`. `zip`-like nodes
    /// with several inputs and the batch emitters of event-time windows are not asked.
    ///
    /// Each call walks the synchronous part of the graph, so it costs more than `emit`.
    ///
    /// ```
    /// use brooklet::{Source, TryEmitError};
    /// use futures::StreamExt;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let everything = source.sink_to_vec();
    /// let mut reader = source.map(|x: u32| x * 10).to_stream_bounded(2);
    /// assert!(source.try_emit(1).is_ok());
    /// assert!(source.try_emit(2).is_ok());
    /// // The reader buffers two elements already: 3 is handed back, to no branch at all.
    /// match source.try_emit(3) {
    ///     Err(TryEmitError::Full(x)) => assert_eq!(x, 3),
    ///     other => panic!("expected Full, got {other:?}"),
    /// }
    /// assert_eq!(everything.snapshot(), vec![1, 2]);
    /// assert_eq!(reader.next().await, Some(10)); // makes room
    /// source.try_emit(3).expect("room again").await?;
    /// source.close().await?;
    /// assert!(matches!(source.try_emit(4), Err(TryEmitError::Closed(4))));
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn try_emit(&self, x: T) -> Result<Emit, TryEmitError<T>> {
        if self.is_closed() {
            return Err(TryEmitError::Closed(x));
        }
        if !try_emit::has_room(self.node.clone()) {
            return Err(TryEmitError::Full(x));
        }
        Ok(self.emit(x))
    }

    /// Like [`emit`](Source::emit), with an acknowledgement token: the token's callback runs
    /// once every output built from `x` has been accepted downstream or `x` was dropped
    /// ([`Outcome::Done`](crate::Outcome::Done)), or once `x` was lost
    /// ([`Outcome::Failed`](crate::Outcome::Failed)): a panic on its path, a node that failed
    /// under it, or a closed source (then `emit_with_ack` also returns [`Error::Closed`]).
    /// See [`Ack`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use brooklet::{Ack, Source};
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let _evens = source.filter(|x: &u32| x % 2 == 0).sink(|_| ());
    /// let done = Arc::new(AtomicUsize::new(0));
    /// for x in 0..4 {
    ///     let d = done.clone();
    ///     let ack = Ack::new(move |outcome| if outcome.is_done() { d.fetch_add(1, Ordering::SeqCst); });
    ///     source.emit_with_ack(x, ack).await?;
    /// }
    /// assert_eq!(done.load(Ordering::SeqCst), 4); // sunk or filtered out: all done
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn emit_with_ack(&self, x: T, ack: Ack) -> Emit {
        self.emit_with_acks(x, Acks::One(ack))
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack), for an element built from several others:
    /// it carries all their tokens.
    pub(crate) fn emit_with_acks(&self, x: T, acks: Acks) -> Emit {
        if self.node.op.closed.load(Ordering::Acquire) {
            acks.fail(&Error::Closed);
            return Emit::failed(Error::Closed);
        }
        let mut cx = Cx::with_acks(acks);
        // Tokens are the slow path already: catching a panic here lets the element's token
        // fail with the panic's own message before the panic goes on to the caller.
        let pushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.node.meta.received.inc();
            self.node.out.pass(x, &mut cx);
        }));
        if let Err(payload) = pushed {
            let node = take_panic_site().unwrap_or_else(|| "unknown".to_string());
            cx.acks.fail(&Error::panicked(&node, &*payload));
            drop(cx);
            std::panic::resume_unwind(payload);
        }
        cx.into_emit()
    }

    /// Pushes every element of `xs`, in order, as one batch, and returns a future that resolves
    /// when every downstream node has accepted all of them. See [`Emit`].
    ///
    /// Element-wise operators (`map`, `filter`, `filter_map`, `flat_map`, `accumulate`, `sink`,
    /// `sink_to_vec`, `union`) handle the whole batch in one call, so their dispatch and counters
    /// are paid once per batch, not once per element: for small elements this is several
    /// times cheaper than one `emit` per element. Every other node (windows, buffers, `zip`,
    /// `par_map`, time-based nodes) takes the elements one by one, exactly as if they had been
    /// emitted one at a time: the outputs, their order, the tokens and the waits are the
    /// same. A batch larger than a bounded node's capacity is taken whole, as `emit` takes an
    /// element over the bound, and the future pends until the node has drained back under its
    /// bound; it never deadlocks. Counters count elements, not batches.
    ///
    /// Each branch of a fan-out gets the whole batch, one branch after the other, so where
    /// two branches of one node meet again (a `union` or `zip` of both), the elements arrive
    /// there in another interleaving than single emits give: branch by branch rather than
    /// element by element. Each branch keeps its own order.
    ///
    /// An empty batch does nothing and returns a complete future (even on a closed source:
    /// there is nothing to lose); a batch of one is the same as [`emit`](Source::emit).
    ///
    /// # Panics
    ///
    /// A panic in a user function at one element unwinds into this call, as with `emit`, once
    /// the outputs of the elements before it have been pushed on downstream; the elements
    /// after it are dropped. The graph stays usable.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let kept = source
    ///     .map(|x: u32| x * 10)
    ///     .filter(|x| x % 20 == 0)
    ///     .sink_to_vec();
    /// let pairs = source.partition(2).sink_to_vec(); // takes the elements one by one
    /// source.emit_batch(vec![1, 2, 3, 4]).await?;
    /// assert_eq!(kept.snapshot(), vec![20, 40]);
    /// assert_eq!(pairs.snapshot(), vec![vec![1, 2], vec![3, 4]]);
    /// assert_eq!(source.metrics().received, 4);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn emit_batch(&self, mut xs: Vec<T>) -> Emit {
        match xs.len() {
            0 => Emit::complete(),
            1 => self.emit(xs.pop().expect("one element")),
            _ => {
                let node = &*self.node;
                if node.op.closed.load(Ordering::Acquire) {
                    return Emit::failed(Error::Closed);
                }
                let mut cx = Cx::new();
                node.meta.received.add(xs.len());
                node.out.pass_batch(xs, &mut cx);
                if cx.is_trivial() {
                    std::mem::forget(cx);
                    return Emit::complete();
                }
                cx.into_emit()
            }
        }
    }

    /// Like [`emit_batch`](Source::emit_batch), with one acknowledgement token for the whole
    /// batch: its callback runs once every element of `xs` is done
    /// ([`Outcome::Done`](crate::Outcome::Done)), or with
    /// [`Outcome::Failed`](crate::Outcome::Failed) if any of them was lost (a panic on its
    /// path, a node that failed under it, a closed source). An empty batch releases the token
    /// at once, as done. See [`emit_with_ack`](Source::emit_with_ack).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use brooklet::{Ack, Outcome, Source};
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let pairs = source.partition(2).sink_to_vec();
    /// let outcome = Arc::new(Mutex::new(None));
    /// let slot = outcome.clone();
    /// let ack = Ack::new(move |o| *slot.lock().unwrap() = Some(o));
    /// source.emit_batch_with_ack(vec![1, 2, 3], ack).await?;
    /// // `partition` still holds element 3: the batch is not done yet.
    /// assert_eq!(*outcome.lock().unwrap(), None);
    /// source.close().await?; // flushes [3]
    /// assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));
    /// assert_eq!(pairs.snapshot(), vec![vec![1, 2], vec![3]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn emit_batch_with_ack(&self, xs: Vec<T>, ack: Ack) -> Emit {
        if xs.is_empty() {
            return Emit::complete();
        }
        if self.node.op.closed.load(Ordering::Acquire) {
            ack.fail(Error::Closed);
            return Emit::failed(Error::Closed);
        }
        let mut cx = Cx::with_acks(Acks::One(ack));
        // As in `emit_with_ack`: the token fails with the panic's own message.
        let pushed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.node.meta.received.add(xs.len());
            self.node.out.pass_batch(xs, &mut cx);
        }));
        if let Err(payload) = pushed {
            let node = take_panic_site().unwrap_or_else(|| "unknown".to_string());
            cx.acks.fail(&Error::panicked(&node, &*payload));
            drop(cx);
            std::panic::resume_unwind(payload);
        }
        cx.into_emit()
    }

    #[inline]
    fn emit_in(&self, x: T, mut cx: Cx) -> Emit {
        let node = &*self.node;
        if node.op.closed.load(Ordering::Acquire) {
            return Emit::failed(Error::Closed);
        }
        node.meta.received.inc();
        node.out.pass(x, &mut cx);
        if cx.is_trivial() {
            // Nothing to clean up: skip the move and the drop glue (see `Cx::into_emit`).
            std::mem::forget(cx);
            return Emit::complete();
        }
        cx.into_emit()
    }

    /// Ends the stream: every node downstream flushes what it holds (windows, batches,
    /// buffers) and ends in turn. The future resolves when all pending work has drained, with
    /// the first failure any node reported. Later emits fail with [`Error::Closed`]; closing
    /// again resolves at once.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let batches = source.partition(3).sink_to_vec();
    /// for x in 1..=4 {
    ///     source.emit(x).await?;
    /// }
    /// source.close().await?; // flushes the partial batch
    /// assert_eq!(batches.snapshot(), vec![vec![1, 2, 3], vec![4]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// A panic in a user function during the flush (a window's consumer, say) unwinds into
    /// this call, after every other branch of the graph has been flushed and ended. Every
    /// later `close()` then fails with that panic as an [`Error::Panicked`], so a second
    /// `close()` never reports a clean end that did not happen.
    pub fn close(&self) -> Emit {
        if let Some(e) = self.node.op.close_failure.lock().clone() {
            return Emit::failed(e);
        }
        let mut cx = Cx::new();
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.node.finish(&mut cx);
        }));
        if let Err(payload) = closed {
            let node = take_panic_site().unwrap_or_else(|| "unknown".to_string());
            *self.node.op.close_failure.lock() = Some(Error::panicked(&node, &*payload));
            drop(cx);
            std::panic::resume_unwind(payload);
        }
        cx.into_emit()
    }

    /// Names the source (see [`Stream::named`]) and returns it.
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<i32>::new().named("readings");
    /// assert_eq!(source.name(), "readings");
    /// ```
    pub fn named(self, name: impl Into<String>) -> Source<T> {
        self.stream.named(name);
        self
    }

    /// Whether the source has ended (closed, or all its forward upstreams ended).
    ///
    /// ```
    /// use brooklet::Source;
    /// let source = Source::<u8>::new();
    /// drop(source.close());
    /// assert!(source.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.node.op.closed.load(Ordering::Acquire)
    }
}
