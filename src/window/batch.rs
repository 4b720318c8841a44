//! Mini-batches driven by an emitter (the omega|ml model).
//!
//! [`Stream::batch`] buffers items with their arrival time (and creation time, from an
//! extractor or the arrival time) and asks its [`Emitter`] what to do after each arrival and
//! at each deadline the emitter asked for. The emitter picks which buffered items form the
//! next batches, which are stragglers (sent to the [`late`](Batched::late) output), which to
//! discard, and when to look again without new input (a deadline, driving a tokio timer). At
//! end of stream it decides what to flush.
//!
//! Selected items leave the buffer only once their batch has been accepted downstream (the
//! task awaits each emission), and their acknowledgement tokens are released then. Times are
//! ms: processing time is read from the tokio clock (so tests run on a paused clock) and
//! expressed as ms since the Unix epoch, anchored when the node is built.
//!
//! **Bounded.** The node holds at most [`Emitter::capacity`] items (default
//! [`BATCH_CAPACITY`]) plus two input queues' worth (1,024 each): once its buffer is full it
//! takes nothing more until a poll has made room, its input queue fills, and `emit` pends. So
//! a producer that awaits `emit` into a batch that waits (an hour-long time slice) is held
//! back, and memory stays flat. A poll costs what the emitter does with the buffer it is
//! shown: the buffer is not copied for it, and removing what a poll named is one pass, done
//! only when it named something.
//!
//! **Failures.** A panic downstream of a batch is caught and reported on the next `emit` (or
//! by `close()`); the node goes on. A panic in the emitter itself fails the node for good: the
//! items it holds fail (their tokens see [`Outcome::Failed`](crate::Outcome)), and every later
//! `emit` and `close()` return the error; nothing hangs.
//!
//! Presets: [`CountWindow`](super::CountWindow) (Streamz's `partition(n, timeout)`),
//! [`FixedTimeWindow`](super::FixedTimeWindow) and
//! [`RelaxedTimeWindow`](super::RelaxedTimeWindow) (Streamz's `timed_window(d)`).

use std::fmt;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use crate::graph::task::{Detach, Mailbox, Task, end_targets, forward, runtime};
use crate::graph::{Acks, Cx, Input, Operator, Outputs, Side};
use crate::{Item, Stream};

/// How many items a batching operator holds by default (see [`Emitter::capacity`]): past that,
/// it takes no more from its input queue, and once that queue is full too, `emit` pends until
/// a batch has gone out.
///
/// ```
/// assert!(brooklet::window::BATCH_CAPACITY >= 1_024);
/// ```
pub const BATCH_CAPACITY: usize = 8_192;

/// A buffered item, with its arrival and creation times (ms since the epoch).
///
/// ```
/// use brooklet::window::Buffered;
/// let b = Buffered { item: 'x', arrived: 10, created: 8 };
/// assert_eq!(b.arrived - b.created, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffered<T> {
    /// The item.
    pub item: T,
    /// When it entered the buffer (processing time).
    pub arrived: i64,
    /// When it was created: the batch's time extractor, or the arrival time.
    pub created: i64,
}

/// What an [`Emitter`] decided; indexes refer to the buffer it was shown.
///
/// ```
/// use brooklet::window::Poll;
/// let p = Poll { batches: vec![vec![1, 0]], wake_at: Some(1_000), ..Poll::default() };
/// assert!(p.stragglers.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Poll {
    /// Batches to emit now, in order; each lists buffer indexes in the order the items appear
    /// in the batch. An empty batch is emitted as an empty `Vec`.
    pub batches: Vec<Vec<usize>>,
    /// Items to send to the late output, in order.
    pub stragglers: Vec<usize>,
    /// Items to drop (their tokens are released).
    pub discard: Vec<usize>,
    /// When to poll again without new input (ms, processing time).
    pub wake_at: Option<i64>,
    /// The time slice `[start, end)` each batch covers, in the order of `batches`, for
    /// emitters that cut time into slices (shorter than `batches`, or empty: not a time
    /// slice). The node hands it on through [`Batched::slices`].
    pub slices: Vec<(i64, i64)>,
}

/// A batch with the time slice it covers: what [`Batched::slices`] emits, so that an empty
/// slice can be told from another, and a batch placed in time.
///
/// ```
/// use brooklet::window::Slice;
/// let s = Slice { start: Some(0), end: Some(1_000), items: vec!['a'] };
/// assert_eq!(s.end.zip(s.start).map(|(e, b)| e - b), Some(1_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice<T> {
    /// First ms of the slice (ms since the epoch, processing time), if the emitter cuts time
    /// into slices.
    pub start: Option<i64>,
    /// First ms after the slice.
    pub end: Option<i64>,
    /// The batch.
    pub items: Vec<T>,
}

/// Options of a batching operator, for [`Stream::batch_with`].
///
/// ```
/// use brooklet::window::BatchOptions;
/// let options = BatchOptions::new()
///     .created(|x: &(i64, u8)| x.0)
///     .clock_starting_at(1_700_000_000_000);
/// # drop(options);
/// ```
pub struct BatchOptions<T> {
    created: Created<T>,
    clock_start: Option<i64>,
}

impl<T> Default for BatchOptions<T> {
    fn default() -> Self {
        BatchOptions {
            created: None,
            clock_start: None,
        }
    }
}

impl<T> BatchOptions<T> {
    /// The defaults: an item's creation time is its arrival time, and the processing clock
    /// reads the system's wall clock when the node is built, then advances with tokio's.
    ///
    /// ```
    /// let _ = brooklet::window::BatchOptions::<u8>::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Each item's creation time (ms since the epoch) is read by `created`.
    ///
    /// ```
    /// let _ = brooklet::window::BatchOptions::new().created(|x: &(i64, f64)| x.0);
    /// ```
    pub fn created(self, created: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        BatchOptions {
            created: Some(Arc::new(created)),
            ..self
        }
    }

    /// The processing clock reads `ms` (ms since the epoch) when the node is built, instead of
    /// the system's wall clock, then advances with tokio's clock. Tests on tokio's paused clock
    /// then know every time the emitter sees.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::{BatchOptions, FixedTimeWindow, Slice};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let batched = source.batch_with(
    ///     FixedTimeWindow::new(1_000).aligned_to_epoch(),
    ///     BatchOptions::new().clock_starting_at(10_500),
    /// );
    /// let slices = batched.slices().sink_to_vec();
    /// source.emit('a').await?;
    /// tokio::time::sleep(std::time::Duration::from_millis(1_600)).await;
    /// assert_eq!(slices.snapshot(), vec![
    ///     Slice { start: Some(10_000), end: Some(11_000), items: vec!['a'] },
    ///     Slice { start: Some(11_000), end: Some(12_000), items: vec![] },
    /// ]);
    /// # Ok(()) }
    /// ```
    pub fn clock_starting_at(self, ms: i64) -> Self {
        BatchOptions {
            clock_start: Some(ms),
            ..self
        }
    }
}

/// Decides how a batching operator turns its buffer into batches.
///
/// A user-written emitter: sort the buffer by a field and emit only the even values, in
/// batches of `n`:
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::{Buffered, Emitter, Poll};
///
/// struct SortedEvens { n: usize }
///
/// impl Emitter<(u32, &'static str)> for SortedEvens {
///     fn poll(&mut self, buffer: &[Buffered<(u32, &'static str)>], _now: i64) -> Poll {
///         let discard = (0..buffer.len()).filter(|&i| buffer[i].item.0 % 2 == 1).collect();
///         let mut evens: Vec<usize> = (0..buffer.len()).filter(|&i| buffer[i].item.0 % 2 == 0).collect();
///         evens.sort_by_key(|&i| buffer[i].item.0);
///         let full = evens.len() / self.n * self.n;
///         let batches = evens[..full].chunks(self.n).map(|c| c.to_vec()).collect();
///         Poll { batches, discard, ..Poll::default() }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let batches = source.batch(SortedEvens { n: 2 }).sink_to_vec();
/// for x in [(8, "h"), (3, "c"), (2, "b")] {
///     source.emit(x).await?;
/// }
/// source.close().await?;
/// assert_eq!(batches.snapshot(), vec![vec![(2, "b"), (8, "h")]]);
/// # Ok(()) }
/// ```
pub trait Emitter<T>: Send + 'static {
    /// Called when the node starts, after each arrival, and at each `wake_at`. A panic here
    /// (or in [`flush`](Emitter::flush)) fails the node for good: the items it holds fail,
    /// and every later `emit` and `close()` return the error.
    ///
    /// ```
    /// use brooklet::window::{Buffered, CountWindow, Emitter};
    /// let mut e = CountWindow::new(2);
    /// let buf: Vec<_> = (0..3).map(|i| Buffered { item: i, arrived: 0, created: 0 }).collect();
    /// assert_eq!(e.poll(&buf, 0).batches, vec![vec![0, 1]]);
    /// ```
    fn poll(&mut self, buffer: &[Buffered<T>], now: i64) -> Poll;

    /// How many items the node may hold for this emitter (default [`BATCH_CAPACITY`]). Past
    /// that, the node takes no more input until a poll (after an arrival or at `wake_at`) has
    /// made room, and `emit` pends once its input queue is full too. An emitter that needs
    /// more items than this to decide must say so here; one that decides nothing and asks no
    /// deadline with a full buffer leaves its producers waiting until the stream ends.
    ///
    /// ```
    /// use brooklet::window::{CountWindow, Emitter, BATCH_CAPACITY};
    /// assert_eq!(Emitter::<u8>::capacity(&CountWindow::new(10)), BATCH_CAPACITY);
    /// assert_eq!(Emitter::<u8>::capacity(&CountWindow::new(100_000)), 100_000);
    /// ```
    fn capacity(&self) -> usize {
        BATCH_CAPACITY
    }

    /// Called at end of stream, after a last `poll`. The default emits everything still
    /// buffered as one batch (nothing when the buffer is empty).
    ///
    /// ```
    /// use brooklet::window::{Buffered, CountWindow, Emitter};
    /// let mut e = CountWindow::new(5);
    /// let buf = vec![Buffered { item: 'a', arrived: 0, created: 0 }];
    /// assert_eq!(e.flush(&buf, 0).batches, vec![vec![0]]);
    /// ```
    fn flush(&mut self, buffer: &[Buffered<T>], now: i64) -> Poll {
        let _ = now;
        Poll {
            batches: if buffer.is_empty() {
                vec![]
            } else {
                vec![(0..buffer.len()).collect()]
            },
            ..Poll::default()
        }
    }
}

type Created<T> = Option<Arc<dyn Fn(&T) -> i64 + Send + Sync>>;

/// The processing-time clock, in ms since the epoch, anchored at build time.
#[derive(Clone, Copy)]
struct Now {
    base: Instant,
    epoch_ms: i64,
}

impl Now {
    fn new(start: Option<i64>) -> Now {
        let epoch_ms = start.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        });
        Now {
            base: Instant::now(),
            epoch_ms,
        }
    }

    fn ms(&self) -> i64 {
        self.epoch_ms
            .saturating_add(Instant::now().duration_since(self.base).as_millis() as i64)
    }

    fn instant(&self, ms: i64) -> Instant {
        let after = ms.saturating_sub(self.epoch_ms).max(0) as u64;
        self.base + std::time::Duration::from_millis(after)
    }
}

pub(crate) struct BatchOp<T: Item> {
    mailbox: Arc<Mailbox<(T, i64)>>,
    task: Arc<Task>,
    created: Created<T>,
    now: Now,
    buffered: Arc<AtomicUsize>,
}

impl<T: Item> Operator for BatchOp<T> {
    type Out = Vec<T>;
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<Vec<T>>, cx: &mut Cx) {
        self.mailbox.close();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        self.mailbox.len() + self.buffered.load(Ordering::Relaxed)
    }
}

impl<T: Item> Input<0> for BatchOp<T> {
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        self.task.report(cx);
        let now = self.now.ms();
        let created = match &self.created {
            Some(f) => out.call(|| f(&x)),
            None => now,
        };
        self.mailbox.put((x, created), cx);
    }
}

impl<T: Item> Detach for BatchOp<T> {
    fn detach(&self) {
        self.mailbox.close();
    }
}

/// A batching operator: dereferences to its stream of batches; [`late`](Batched::late) gives
/// the stragglers.
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::CountWindow;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let batched = source.batch(CountWindow::new(2));
/// let out = batched.sink_to_vec();
/// for x in 0..5 { source.emit(x).await?; }
/// source.close().await?;
/// assert_eq!(out.snapshot(), vec![vec![0, 1], vec![2, 3], vec![4]]);
/// # Ok(()) }
/// ```
pub struct Batched<T: Item> {
    stream: Stream<Vec<T>>,
    late: Stream<T>,
    slices: Stream<Slice<T>>,
}

impl<T: Item> Clone for Batched<T> {
    fn clone(&self) -> Self {
        Batched {
            stream: self.stream.clone(),
            late: self.late.clone(),
            slices: self.slices.clone(),
        }
    }
}

impl<T: Item> fmt::Debug for Batched<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batched")
            .field("name", &self.stream.name())
            .finish()
    }
}

impl<T: Item> Deref for Batched<T> {
    type Target = Stream<Vec<T>>;
    fn deref(&self) -> &Stream<Vec<T>> {
        &self.stream
    }
}

impl<T: Item> Batched<T> {
    /// Items the emitter called stragglers, one element each.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::FixedTimeWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let batched = source.batch_timed(FixedTimeWindow::new(1_000), |x: &i64| *x);
    /// let late = batched.late().sink_to_vec();
    /// source.emit(0).await?; // created at the epoch: long before the current slice
    /// tokio::task::yield_now().await;
    /// assert_eq!(late.snapshot(), vec![0]);
    /// # Ok(()) }
    /// ```
    pub fn late(&self) -> Stream<T> {
        self.late.clone()
    }

    /// The same batches, each with the time slice it covers (see [`Slice`]): emitted beside
    /// the plain batches, with the same tokens, only while something consumes it.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::{BatchOptions, RelaxedTimeWindow, Slice};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let batched = source.batch_with(
    ///     RelaxedTimeWindow::new(1_000).emit_empty(),
    ///     BatchOptions::new().clock_starting_at(0),
    /// );
    /// let slices = batched.slices().sink_to_vec();
    /// source.emit(1).await?;
    /// tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    /// let spans: Vec<_> = slices.snapshot().into_iter().map(|s| (s.start, s.items)).collect();
    /// assert_eq!(spans, vec![(Some(0), vec![1]), (Some(1_000), vec![])]);
    /// # Ok(()) }
    /// ```
    pub fn slices(&self) -> Stream<Slice<T>> {
        self.slices.clone()
    }
}

impl<T: Item> Stream<T> {
    /// Buffers items and emits `Vec<T>` batches as `emitter` decides (see [`Emitter`]). An
    /// item's creation time is its arrival time.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::RelaxedTimeWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.batch(RelaxedTimeWindow::new(1_000)).sink_to_vec();
    /// source.emit('a').await?;
    /// source.emit('b').await?;
    /// tokio::time::sleep(std::time::Duration::from_millis(1_001)).await;
    /// assert_eq!(out.snapshot(), vec![vec!['a', 'b']]);
    /// # Ok(()) }
    /// ```
    pub fn batch(&self, emitter: impl Emitter<T>) -> Batched<T> {
        self.batch_with(emitter, BatchOptions::new())
    }

    /// Like [`batch`](Self::batch), with each item's creation time (ms since the epoch) read
    /// by `created`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::CountWindow;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.batch_timed(CountWindow::new(2), |x: &(i64, u8)| x.0).sink_to_vec();
    /// source.emit((5, 1)).await?;
    /// source.emit((6, 2)).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot(), vec![vec![(5, 1), (6, 2)]]);
    /// # Ok(()) }
    /// ```
    pub fn batch_timed(
        &self,
        emitter: impl Emitter<T>,
        created: impl Fn(&T) -> i64 + Send + Sync + 'static,
    ) -> Batched<T> {
        self.batch_with(emitter, BatchOptions::new().created(created))
    }

    /// Like [`batch`](Self::batch), with [`BatchOptions`]: how to read an item's creation
    /// time, and where the processing clock starts.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::{BatchOptions, CountWindow};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source
    ///     .batch_with(CountWindow::new(2), BatchOptions::new().created(|x: &(i64, u8)| x.0))
    ///     .sink_to_vec();
    /// source.emit((5, 1)).await?;
    /// source.emit((6, 2)).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot(), vec![vec![(5, 1), (6, 2)]]);
    /// # Ok(()) }
    /// ```
    pub fn batch_with<E: Emitter<T>>(
        &self,
        mut emitter: E,
        options: BatchOptions<T>,
    ) -> Batched<T> {
        let BatchOptions {
            created,
            clock_start,
        } = options;
        let rt = runtime("batch");
        let mailbox = Mailbox::new(1_024);
        let task = Task::new("batch");
        let late = Arc::new(Side::new("late"));
        let slices = Arc::new(Side::new("slices"));
        let buffered = Arc::new(AtomicUsize::new(0));
        let now = Now::new(clock_start);
        let node = self.then_detachable(
            "batch",
            BatchOp {
                mailbox: mailbox.clone(),
                task: task.clone(),
                created,
                now,
                buffered: buffered.clone(),
            },
        );
        task.bind(node.clone());
        late.set_owner(node.clone());
        slices.set_owner(node.clone());
        let late_stream = late.stream();
        let slices_stream = slices.stream();
        let worker = node.clone();
        let t = task.clone();
        mailbox.fail_with(&task);
        let capacity = emitter.capacity().max(1);
        task.spawn(&rt, async move {
            let mut buf = Buffer::default();
            let mut wake: Option<i64> = None;
            let mut first = true;
            loop {
                if !first {
                    if mailbox.is_drained() {
                        break;
                    }
                    // A full buffer takes nothing more until a batch has gone out: the input
                    // queue fills up and `emit` pends (or the stream ends).
                    let full = buf.items.len() >= capacity;
                    let input = std::pin::pin!(async {
                        if full {
                            mailbox.closed().await;
                        } else {
                            mailbox.ready().await;
                        }
                    });
                    match wake {
                        Some(at) => {
                            let sleep = std::pin::pin!(tokio::time::sleep_until(now.instant(at)));
                            futures_util::future::select(input, sleep).await;
                        }
                        None => input.await,
                    }
                }
                first = false;
                if buf.items.len() < capacity || mailbox.is_closed() {
                    let arrived = now.ms();
                    for ((item, created), acks) in mailbox.take_all() {
                        buf.items.push(Buffered {
                            item,
                            arrived,
                            created,
                        });
                        buf.acks.push(acks);
                    }
                }
                buffered.store(buf.items.len(), Ordering::Relaxed);
                let p = buf.ask(&t, |items| emitter.poll(items, now.ms()));
                wake = p.wake_at;
                apply(&worker.out, &t, &late, &slices, &mut buf, p).await;
                buffered.store(buf.items.len(), Ordering::Relaxed);
            }
            let p = buf.ask(&t, |items| emitter.flush(items, now.ms()));
            apply(&worker.out, &t, &late, &slices, &mut buf, p).await;
            buf.items.clear();
            buf.acks.clear();
            buffered.store(0, Ordering::Relaxed);
            let mut cx = Cx::new();
            late.finish(&mut cx);
            slices.finish(&mut cx);
            if let Err(e) = cx.into_emit().await {
                t.fail(e);
            }
            end_targets(&worker.out, &t).await;
        });
        Batched {
            stream: Stream::from_node(node),
            late: late_stream,
            slices: slices_stream,
        }
    }
}

/// The items a batching node holds, and their tokens, side by side: the emitter is shown
/// `items` as they are (no copy per poll).
struct Buffer<T> {
    items: Vec<Buffered<T>>,
    acks: Vec<Acks>,
}

impl<T> Default for Buffer<T> {
    fn default() -> Self {
        Buffer {
            items: Vec::new(),
            acks: Vec::new(),
        }
    }
}

impl<T> Buffer<T> {
    /// Runs the emitter on the items. A panic in it fails the node for good: the items it
    /// holds fail with the error, then the panic ends the task, and every later `emit` and
    /// `close()` report it.
    fn ask(&mut self, task: &Task, f: impl FnOnce(&[Buffered<T>]) -> Poll) -> Poll {
        match catch_unwind(AssertUnwindSafe(|| f(&self.items))) {
            Ok(p) => p,
            Err(payload) => {
                let error = task.panicked_here(&*payload);
                for acks in self.acks.drain(..) {
                    acks.fail(&error);
                }
                self.items.clear();
                resume_unwind(payload)
            }
        }
    }
}

/// Pushes `x` into a side output from the task and waits until it was accepted; a panic
/// downstream fails `x`'s tokens and is recorded, as on the main output.
async fn push_side<X: Item>(side: &Side<X>, task: &Task, x: X, acks: Acks) {
    let mut cx = Cx::with_acks(acks);
    match catch_unwind(AssertUnwindSafe(|| side.push(x, &mut cx))) {
        Ok(()) => {
            if let Err(e) = cx.into_emit().await {
                task.fail(e);
            }
        }
        Err(payload) => {
            let error = task.panicked(&*payload);
            cx.acks.fail(&error);
            task.fail(error);
        }
    }
}

/// Emits the batches, then the stragglers, then removes every item the poll named (in one
/// pass, and only when it named any).
async fn apply<T: Item>(
    out: &Outputs<Vec<T>>,
    task: &Task,
    late: &Side<T>,
    slices: &Side<Slice<T>>,
    buf: &mut Buffer<T>,
    p: Poll,
) {
    let n = buf.items.len();
    let valid = move |i: &usize| *i < n;
    for (k, batch) in p.batches.iter().enumerate() {
        let items: Vec<T> = batch
            .iter()
            .filter(|i| valid(i))
            .map(|&i| buf.items[i].item.clone())
            .collect();
        let acks = Acks::union(batch.iter().filter(|i| valid(i)).map(|&i| &buf.acks[i]));
        if slices.is_connected() {
            let span = p.slices.get(k).copied();
            let slice = Slice {
                start: span.map(|s| s.0),
                end: span.map(|s| s.1),
                items: items.clone(),
            };
            push_side(slices, task, slice, acks.clone()).await;
        }
        forward(out, task, items, acks).await;
    }
    for &i in p.stragglers.iter().filter(|i| valid(i)) {
        let item = buf.items[i].item.clone();
        push_side(late, task, item, buf.acks[i].clone()).await;
    }
    let named =
        p.batches.iter().map(Vec::len).sum::<usize>() + p.stragglers.len() + p.discard.len();
    if named == 0 {
        return;
    }
    let mut gone = vec![false; n];
    for &i in p
        .batches
        .iter()
        .flatten()
        .chain(&p.stragglers)
        .chain(&p.discard)
    {
        if i < n {
            gone[i] = true;
        }
    }
    let mut k = 0;
    buf.items.retain(|_| {
        k += 1;
        !gone[k - 1]
    });
    let mut k = 0;
    buf.acks.retain(|_| {
        k += 1;
        !gone[k - 1]
    });
}
