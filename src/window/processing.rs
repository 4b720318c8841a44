//! Processing-time windows: tumbling and hopping windows over the time at which events arrive,
//! read from the tokio clock and closed by a timer.
//!
//! Why a kind of its own: event-time windows read time from the data and close when the data's
//! clock passes their end, so a quiet stream leaves its last window open. A processing-time
//! window closes when the wall clock passes its end, whether or not anything arrives: a timer
//! does it. It reports the same [`WindowResult`] (key, start, end, value) and takes the same
//! [aggregators](crate::window::aggregate), so the two are interchangeable downstream.
//!
//! Why the timer sleeps only while a window is open: an idle pipeline should cost nothing. The
//! node's task sleeps until the end of the earliest open window; with no window open it waits
//! for the next event without any timer, so an idle graph never wakes up (and a paused tokio
//! clock in tests can jump straight past it).
//!
//! Invariants:
//! - Processing time is `origin + (tokio now - build instant)` in ms; `origin` is the Unix time
//!   in ms when the operator was built, unless set with
//!   [`clock_starting_at`](ProcessingWindowBuilder::clock_starting_at). Windows are aligned to ms 0.
//! - An event is stamped with the processing time at which it is pushed and lands in every
//!   window `[start, start + size)` containing it (`start` a multiple of `step`); intervals are
//!   half-open, so an event exactly at a window's end belongs to the next one.
//! - A window closes when processing time reaches its end; windows closing together are
//!   emitted by ascending `(end, start)`, and one window's keys in the order they first
//!   appeared in it. Empty windows are never emitted. End of stream closes every open window.
//! - A user function on the caller's push (the key, the aggregate's `add`) runs before any
//!   state changes: the event is folded into a fresh accumulator first, and only then into the
//!   windows (by `merge`, or by `add` again for aggregators that cannot merge). A panic there
//!   unwinds to the caller of `emit` and leaves every window as it was.
//! - Results are pushed by the node's task, which awaits each push: while a closing's results
//!   are pending downstream, an `emit` into the node pends until they have been accepted. A
//!   panic in `result` or downstream is reported on the next `emit` or at `close()` and fails
//!   only that result's tokens.
//! - Tokens of an event are held by every window it is in and released once that window's
//!   result for its key has been accepted downstream.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Add, Deref};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::{Either, select};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::aggregate::{self, Aggregator, Extract};
use super::assign::IntoMillis;
use super::keyhash::KeyMap;
use super::operator::WindowKey;
use super::result::WindowResult;
use crate::graph::sync::{Lock, until};
use crate::graph::task::{Detach, Task, end_targets, forward, runtime};
use crate::graph::{Acks, Cx, Input, Node, Operator, Outputs, Room};
use crate::{Error, Item, Stream};

/// The shape of a processing-time window: tumbling or hopping, sizes in ms (an `i64` or a
/// [`Duration`] rounded to the nearest ms, see [`IntoMillis`]).
///
/// ```
/// use std::time::Duration;
/// use brooklet::window::ProcessingWindow;
/// let every_second = ProcessingWindow::tumbling(Duration::from_secs(1));
/// let last_minute_every_10s = ProcessingWindow::hopping(60_000, 10_000);
/// assert_eq!(every_second.size_ms(), 1_000);
/// assert_eq!(last_minute_every_10s.step_ms(), 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingWindow {
    size: i64,
    step: i64,
}

fn positive(what: &str, ms: i64) -> i64 {
    assert!(
        ms > 0,
        "processing_window: the {what} must be at least 1 ms (got {ms} ms)"
    );
    ms
}

impl ProcessingWindow {
    /// Back-to-back windows of `size`.
    ///
    /// # Panics
    ///
    /// If `size` is not at least 1 ms.
    ///
    /// ```
    /// use brooklet::window::ProcessingWindow;
    /// assert_eq!(ProcessingWindow::tumbling(500).step_ms(), 500);
    /// ```
    pub fn tumbling(size: impl IntoMillis) -> ProcessingWindow {
        let size = positive("size", size.into_millis());
        ProcessingWindow { size, step: size }
    }

    /// Windows of `size` starting every `step`; an event lands in every window containing it.
    ///
    /// # Panics
    ///
    /// If `size` or `step` is not at least 1 ms, or `step > size`.
    ///
    /// ```
    /// use brooklet::window::ProcessingWindow;
    /// let w = ProcessingWindow::hopping(1_000, 250);
    /// assert_eq!((w.size_ms(), w.step_ms()), (1_000, 250));
    /// ```
    pub fn hopping(size: impl IntoMillis, step: impl IntoMillis) -> ProcessingWindow {
        let size = positive("size", size.into_millis());
        let step = positive("step", step.into_millis());
        assert!(
            step <= size,
            "processing_window: the hopping step ({step} ms) must not exceed the size ({size} ms)"
        );
        ProcessingWindow { size, step }
    }

    /// The window length in ms.
    ///
    /// ```
    /// use brooklet::window::ProcessingWindow;
    /// assert_eq!(ProcessingWindow::tumbling(10).size_ms(), 10);
    /// ```
    pub fn size_ms(&self) -> i64 {
        self.size
    }

    /// The distance between window starts in ms (the size, for tumbling windows).
    ///
    /// ```
    /// use brooklet::window::ProcessingWindow;
    /// assert_eq!(ProcessingWindow::hopping(10, 5).step_ms(), 5);
    /// ```
    pub fn step_ms(&self) -> i64 {
        self.step
    }

    /// The starts of the windows containing `t`, ascending.
    fn starts_of(&self, t: i64) -> impl Iterator<Item = i64> + use<> {
        let (size, step) = (self.size, self.step);
        let last = t.div_euclid(step) * step;
        let first = last - (size - 1).div_euclid(step) * step;
        (0..)
            .map(move |i| first + i * step)
            .take_while(move |s| *s <= last)
            .filter(move |s| s + size > t)
    }
}

type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// Settings of a processing-time window operator, made by [`Stream::processing_window`];
/// an aggregate method ([`count`](Self::count), [`aggregate`](Self::aggregate), ...) builds it.
///
/// ```
/// use std::time::Duration;
/// use brooklet::Source;
/// use brooklet::window::ProcessingWindow;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let source = Source::<(String, f64)>::new();
/// let _per_user = source
///     .processing_window(ProcessingWindow::tumbling(Duration::from_secs(1)))
///     .key_by(|e| e.0.clone())
///     .sum(|e| e.1);
/// # }
/// ```
pub struct ProcessingWindowBuilder<T: Item, K> {
    stream: Stream<T>,
    window: ProcessingWindow,
    key: KeyFn<T, K>,
    origin: Option<i64>,
}

impl<T: Item, K> fmt::Debug for ProcessingWindowBuilder<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessingWindowBuilder")
            .field("window", &self.window)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl<T: Item> Stream<T> {
    /// Starts building a processing-time window operator: windows over the time at which
    /// events arrive (the tokio clock), closed by a timer even when nothing arrives. The
    /// event-time counterpart is [`window`](Self::window). Windows are given by
    /// [`ProcessingWindow`](crate::window::ProcessingWindow); an event is stamped with the
    /// processing time at which it is pushed, a window closes when processing time reaches its
    /// end (whether or not events arrive), and the end of the stream closes every open window.
    /// The node's timer sleeps only while some window is open.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let counts = source
    ///     .processing_window(ProcessingWindow::tumbling(Duration::from_millis(100)))
    ///     .clock_starting_at(0) // processing time counts from 0 when built: exact bounds
    ///     .key_by(|word: &&str| *word)
    ///     .count()
    ///     .sink_to_vec();
    /// for word in ["a", "b", "a"] {
    ///     source.emit(word).await?;
    /// }
    /// sleep(Duration::from_millis(150)).await; // the timer closed [0, 100) at 100 ms
    /// let got: Vec<_> = counts.snapshot().into_iter().map(|r| (r.key, r.end, r.value)).collect();
    /// assert_eq!(got, vec![("a", 100, 2), ("b", 100, 1)]);
    /// source.close().await?;
    /// # Ok(()) }
    /// ```
    pub fn processing_window(&self, window: ProcessingWindow) -> ProcessingWindowBuilder<T, ()> {
        ProcessingWindowBuilder {
            stream: self.clone(),
            window,
            key: Arc::new(|_: &T| ()),
            origin: None,
        }
    }
}

impl<T: Item, K: WindowKey> ProcessingWindowBuilder<T, K> {
    /// Groups events by `f(event)`: each key has its own result per window. Unkeyed streams
    /// use the key `()`.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = Source::<(u8, u32)>::new();
    /// let _ = source.processing_window(ProcessingWindow::tumbling(1_000)).key_by(|e| e.0).count();
    /// # }
    /// ```
    pub fn key_by<K2: WindowKey>(
        self,
        f: impl Fn(&T) -> K2 + Send + Sync + 'static,
    ) -> ProcessingWindowBuilder<T, K2> {
        ProcessingWindowBuilder {
            stream: self.stream,
            window: self.window,
            key: Arc::new(f),
            origin: self.origin,
        }
    }

    /// The processing time, in ms, at which the operator is built (by default the Unix time
    /// in ms then, so results carry wall-clock bounds). Setting it makes window bounds
    /// independent of the wall clock: with `0`, processing time is the time elapsed since the
    /// operator was built, which is what tests on a paused clock want.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = Source::<u8>::new();
    /// let _ = source.processing_window(ProcessingWindow::tumbling(10)).clock_starting_at(0).count();
    /// # }
    /// ```
    pub fn clock_starting_at(mut self, ms: i64) -> Self {
        self.origin = Some(ms);
        self
    }

    /// Computes `agg` per window and key (several at once with a tuple, see
    /// [`aggregate`](crate::window::aggregate)).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use brooklet::window::{ProcessingWindow, aggregate::{count, sum}};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source
    ///     .processing_window(ProcessingWindow::tumbling(Duration::from_millis(10)))
    ///     .aggregate((count(), sum(|x: &u32| *x)))
    ///     .sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// source.close().await?; // the end of the stream closes the open window
    /// assert_eq!(out.snapshot()[0].value, (2, 3));
    /// # Ok(()) }
    /// ```
    pub fn aggregate<A: Aggregator<T>>(self, agg: A) -> ProcessingWindowed<K, A::Out> {
        let kind = "processing_window";
        let rt = runtime(kind);
        let origin = self.origin.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let clock = Clock {
            built: Instant::now(),
            origin,
        };
        let shared = Arc::new(Shared {
            state: Lock::new(State {
                open: BTreeMap::new(),
                ended: false,
                fault: None,
                stats: ProcessingWindowStats::default(),
                started: 0,
                accepted: 0,
                stopped: false,
            }),
            wake: Notify::new(),
            accepted: Notify::new(),
        });
        let task = Task::new(kind);
        let agg = Arc::new(agg);
        let node = self.stream.then_detachable(
            kind,
            ProcessingOp {
                window: self.window,
                clock,
                key: self.key,
                agg: agg.clone(),
                shared: shared.clone(),
                task: task.clone(),
                _t: PhantomData,
            },
        );
        task.bind(node.clone());
        let held = Arc::downgrade(&shared);
        task.on_death(move |e| {
            if let Some(shared) = held.upgrade() {
                shared.die(e);
            }
        });
        let body = run(node.clone(), task.clone(), shared.clone(), agg);
        task.spawn(&rt, body);
        let stats = shared.clone();
        ProcessingWindowed {
            stream: Stream::from_node(node),
            stats: Arc::new(move || stats.stats()),
        }
    }

    /// Counts events per window and key.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.processing_window(ProcessingWindow::tumbling(10)).count().sink_to_vec();
    /// source.emit('x').await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 1);
    /// # Ok(()) }
    /// ```
    pub fn count(self) -> ProcessingWindowed<K, u64> {
        self.aggregate(aggregate::count())
    }

    /// Sums `f(event)` per window and key.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.processing_window(ProcessingWindow::tumbling(10)).sum(|x: &i32| *x).sink_to_vec();
    /// source.emit(4).await?;
    /// source.emit(5).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 9);
    /// # Ok(()) }
    /// ```
    pub fn sum<V>(self, f: impl Extract<T, V>) -> ProcessingWindowed<K, V>
    where
        V: Item + Default + Add<Output = V> + Copy,
    {
        self.aggregate(aggregate::sum(f))
    }

    /// The mean of `f(event)` per window and key.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.processing_window(ProcessingWindow::tumbling(10)).mean(|x: &f64| *x).sink_to_vec();
    /// source.emit(1.0).await?;
    /// source.emit(2.0).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 1.5);
    /// # Ok(()) }
    /// ```
    pub fn mean(self, f: impl Extract<T, f64>) -> ProcessingWindowed<K, f64> {
        self.aggregate(aggregate::mean(f))
    }

    /// Collects `f(event)` per window and key, in arrival order.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.processing_window(ProcessingWindow::tumbling(10)).collect(|x: &char| *x).sink_to_vec();
    /// source.emit('a').await?;
    /// source.emit('b').await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, vec!['a', 'b']);
    /// # Ok(()) }
    /// ```
    pub fn collect<V: Item>(self, f: impl Extract<T, V>) -> ProcessingWindowed<K, Vec<V>> {
        self.aggregate(aggregate::collect(f))
    }

    /// Folds events with `f`, from `init`, per window and key.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source
    ///     .processing_window(ProcessingWindow::tumbling(10))
    ///     .reduce(1u64, |p, x: &u64| p * x)
    ///     .sink_to_vec();
    /// for x in [2, 3, 4] {
    ///     source.emit(x).await?;
    /// }
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 24);
    /// # Ok(()) }
    /// ```
    pub fn reduce<R: Item + Sync>(
        self,
        init: R,
        f: impl Fn(R, &T) -> R + Send + Sync + 'static,
    ) -> ProcessingWindowed<K, R> {
        self.aggregate(aggregate::reduce(init, f))
    }
}

/// Counters of a processing-time window operator.
///
/// ```
/// use brooklet::window::ProcessingWindowStats;
/// let s = ProcessingWindowStats::default();
/// assert_eq!((s.events, s.results, s.open_windows, s.timer_wakeups), (0, 0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProcessingWindowStats {
    /// Events received.
    pub events: u64,
    /// Results emitted.
    pub results: u64,
    /// Windows open right now.
    pub open_windows: u64,
    /// Times the timer woke the operator to close windows. It never wakes while no window is
    /// open.
    pub timer_wakeups: u64,
}

/// A processing-time window operator: dereferences to its result stream, and gives its
/// counters.
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::ProcessingWindow;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let w = source.processing_window(ProcessingWindow::tumbling(100)).count();
/// let results = w.sink_to_vec(); // a Stream method, through Deref
/// source.emit(1u8).await?;
/// assert_eq!(w.stats().open_windows, 1);
/// source.close().await?;
/// assert_eq!(results.snapshot().len(), 1);
/// # Ok(()) }
/// ```
pub struct ProcessingWindowed<K: Item, V: Item> {
    stream: Stream<WindowResult<K, V>>,
    stats: Arc<dyn Fn() -> ProcessingWindowStats + Send + Sync>,
}

impl<K: Item, V: Item> Clone for ProcessingWindowed<K, V> {
    fn clone(&self) -> Self {
        ProcessingWindowed {
            stream: self.stream.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<K: Item, V: Item> fmt::Debug for ProcessingWindowed<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessingWindowed")
            .field("name", &self.stream.name())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<K: Item, V: Item> Deref for ProcessingWindowed<K, V> {
    type Target = Stream<WindowResult<K, V>>;

    fn deref(&self) -> &Self::Target {
        &self.stream
    }
}

impl<K: Item, V: Item> ProcessingWindowed<K, V> {
    /// The result stream (what `Deref` gives, as an owned handle).
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let source = Source::<u8>::new();
    /// let results = source.processing_window(ProcessingWindow::tumbling(10)).count().stream();
    /// assert_eq!(results.name(), "processing_window");
    /// # }
    /// ```
    pub fn stream(&self) -> Stream<WindowResult<K, V>> {
        self.stream.clone()
    }

    /// The operator's counters.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::ProcessingWindow;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let w = source.processing_window(ProcessingWindow::hopping(100, 50)).count();
    /// source.emit(1u8).await?;
    /// assert_eq!((w.stats().events, w.stats().open_windows), (1, 2));
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> ProcessingWindowStats {
        (self.stats)()
    }
}

/// Maps the tokio clock to processing time in ms.
#[derive(Clone, Copy)]
struct Clock {
    built: Instant,
    origin: i64,
}

impl Clock {
    fn now(&self) -> i64 {
        let elapsed = i64::try_from(self.built.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.origin.saturating_add(elapsed)
    }

    /// The tokio instant at which processing time reaches `ms` (`ms` is after the origin).
    fn instant(&self, ms: i64) -> Instant {
        let after = u64::try_from(ms.saturating_sub(self.origin)).unwrap_or(0);
        crate::time::after(self.built, Duration::from_millis(after))
    }
}

/// One key of one open window: its accumulator and the tokens of its events.
struct Slot<K, Acc> {
    key: K,
    acc: Acc,
    acks: Vec<Acks>,
}

struct Win<K, Acc> {
    slots: Vec<Slot<K, Acc>>,
    index: KeyMap<K, usize>,
}

struct State<K, Acc> {
    /// Open windows by start (so by end: every window has the same size).
    open: BTreeMap<i64, Win<K, Acc>>,
    /// The node has ended (or its task died): later events are refused.
    ended: bool,
    /// Why the task died, if it did.
    fault: Option<Error>,
    stats: ProcessingWindowStats,
    /// Closings whose results the task has started to push, and those accepted downstream.
    started: u64,
    accepted: u64,
    /// The task is gone: nothing pending will be accepted.
    stopped: bool,
}

struct Shared<K, Acc> {
    state: Lock<State<K, Acc>>,
    /// Wakes the task: a window opened while none was open, or the node ended.
    wake: Notify,
    /// A closing's results were accepted downstream.
    accepted: Notify,
}

impl<K, Acc> Shared<K, Acc> {
    fn stats(&self) -> ProcessingWindowStats {
        let s = self.state.lock();
        ProcessingWindowStats {
            open_windows: s.open.len() as u64,
            ..s.stats
        }
    }

    /// The task died: fail every held token, refuse later events, release waiting pushes.
    fn die(&self, error: &Error) {
        let lost = {
            let mut s = self.state.lock();
            s.ended = true;
            s.stopped = true;
            s.fault = Some(error.clone());
            std::mem::take(&mut s.open)
        };
        for win in lost.values() {
            for slot in &win.slots {
                for acks in &slot.acks {
                    acks.fail(error);
                }
            }
        }
        self.accepted.notify_waiters();
    }
}

pub(crate) struct ProcessingOp<T, K, A: Aggregator<T>> {
    window: ProcessingWindow,
    clock: Clock,
    key: KeyFn<T, K>,
    agg: Arc<A>,
    shared: Arc<Shared<K, A::Acc>>,
    task: Arc<Task>,
    _t: PhantomData<fn(T)>,
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> Operator for ProcessingOp<T, K, A> {
    type Out = WindowResult<K, A::Out>;
    const DEFERS_END: bool = true;

    fn on_end(&self, _out: &Outputs<Self::Out>, cx: &mut Cx) {
        self.shared.state.lock().ended = true;
        self.shared.wake.notify_one();
        self.task.wait_finished(cx);
    }

    fn held(&self) -> usize {
        self.shared.state.lock().open.len()
    }

    /// Full while a closing's results are pending downstream: a push now would wait for them.
    fn room(&self) -> Room {
        let s = self.shared.state.lock();
        if s.started > s.accepted && !s.stopped && !s.ended {
            Room::Full
        } else {
            Room::Free
        }
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> Detach for ProcessingOp<T, K, A> {
    fn detach(&self) {
        self.shared.state.lock().ended = true;
        self.shared.wake.notify_one();
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> Input<0> for ProcessingOp<T, K, A> {
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Self::Out>, cx: &mut Cx) {
        self.task.report(cx);
        let now = self.clock.now();
        let agg = &*self.agg;
        // User functions first, on nothing shared: a panic leaves every window as it was.
        let key = out.call(|| (self.key)(&x));
        let fresh = out.call(|| {
            let mut fresh = agg.init();
            agg.add(&mut fresh, &x, now);
            fresh
        });
        let (wake, pending) = {
            let mut s = self.shared.state.lock();
            if s.ended {
                let error = s.fault.clone().unwrap_or(Error::Closed);
                drop(s);
                cx.acks.fail(&error);
                cx.fail(error);
                return;
            }
            let wake = s.open.is_empty();
            // An aggregate that cannot merge adds the event to a copy of each window's
            // accumulator, all before any is stored, when there are several: a panic leaves
            // every window as it was.
            let mut staged = if A::MERGEABLE || self.window.step == self.window.size {
                Vec::new()
            } else {
                let open = &s.open;
                out.call(|| {
                    self.window
                        .starts_of(now)
                        .map(|start| {
                            let slot = open
                                .get(&start)
                                .and_then(|w| w.index.get(&key).map(|&i| &w.slots[i]));
                            match slot {
                                Some(slot) => {
                                    let mut acc = slot.acc.clone();
                                    agg.add(&mut acc, &x, now);
                                    acc
                                }
                                None => fresh.clone(),
                            }
                        })
                        .collect()
                })
            }
            .into_iter();
            for start in self.window.starts_of(now) {
                let win = s.open.entry(start).or_insert_with(|| Win {
                    slots: Vec::new(),
                    index: KeyMap::default(),
                });
                let i = match win.index.get(&key) {
                    Some(&i) => i,
                    None => {
                        win.index.insert(key.clone(), win.slots.len());
                        win.slots.push(Slot {
                            key: key.clone(),
                            acc: agg.init(),
                            acks: Vec::new(),
                        });
                        win.slots.len() - 1
                    }
                };
                let slot = &mut win.slots[i];
                match staged.next() {
                    Some(acc) => slot.acc = acc,
                    None if A::MERGEABLE => agg.merge(&mut slot.acc, &fresh),
                    // One window only (tumbling): in place.
                    None => out.call(|| agg.add(&mut slot.acc, &x, now)),
                }
                if !cx.acks.is_empty() {
                    slot.acks.push(cx.acks.clone());
                }
            }
            s.stats.events += 1;
            let pending = (s.started > s.accepted).then_some(s.started);
            (wake, pending)
        };
        drop(fresh);
        if wake {
            self.shared.wake.notify_one();
        }
        if let Some(closing) = pending {
            let shared = self.shared.clone();
            let node = out.name();
            cx.wait(async move {
                until(&shared.accepted, || {
                    let s = shared.state.lock();
                    s.accepted >= closing || s.stopped
                })
                .await;
                let s = shared.state.lock();
                if s.accepted >= closing {
                    Ok(())
                } else {
                    Err(s.fault.clone().unwrap_or_else(|| Error::Failed {
                        node,
                        message: "the node's task stopped before the pending results were \
                                  accepted downstream"
                            .to_string(),
                    }))
                }
            });
        }
    }
}

/// What the task does next.
enum Next {
    /// No window open: wait for one (no timer).
    Idle,
    /// Sleep until processing time reaches this window end.
    Until(i64),
    /// The node ended: close everything.
    End,
}

/// Marks the task stopped (waking waiting pushes) when it returns or is dropped.
struct Stopped<K, Acc>(Arc<Shared<K, Acc>>);

impl<K, Acc> Drop for Stopped<K, Acc> {
    fn drop(&mut self) {
        self.0.state.lock().stopped = true;
        self.0.accepted.notify_waiters();
    }
}

/// The node's task: sleeps until the earliest open window ends, closes what is due, pushes the
/// results; at the end closes everything and ends the node's targets.
async fn run<T: Item, K: WindowKey, A: Aggregator<T>>(
    node: Arc<Node<ProcessingOp<T, K, A>>>,
    task: Arc<Task>,
    shared: Arc<Shared<K, A::Acc>>,
    agg: Arc<A>,
) {
    let _stopped = Stopped(shared.clone());
    let (clock, size) = (node.op.clock, node.op.window.size);
    loop {
        let next = {
            let s = shared.state.lock();
            if s.ended {
                Next::End
            } else {
                match s.open.keys().next() {
                    None => Next::Idle,
                    Some(start) => Next::Until(start + size),
                }
            }
        };
        let due = match next {
            Next::Idle => {
                shared.wake.notified().await;
                continue;
            }
            Next::Until(end) => {
                let timer = pin!(tokio::time::sleep_until(clock.instant(end)));
                let woken = pin!(shared.wake.notified());
                if let Either::Right(_) = select(timer, woken).await {
                    continue; // the node ended (or a stale wake-up): look again
                }
                let now = clock.now();
                let mut s = shared.state.lock();
                s.stats.timer_wakeups += 1;
                let later = s.open.split_off(&(now - size + 1));
                std::mem::replace(&mut s.open, later)
            }
            Next::End => std::mem::take(&mut shared.state.lock().open),
        };
        let ended = matches!(next, Next::End);
        emit(&node, &task, &shared, &*agg, due, size).await;
        if ended {
            break;
        }
    }
    end_targets(&node.out, &task).await;
}

/// Pushes the results of the windows in `due` (ascending start), each key in order.
async fn emit<T: Item, K: WindowKey, A: Aggregator<T>>(
    node: &Node<ProcessingOp<T, K, A>>,
    task: &Task,
    shared: &Shared<K, A::Acc>,
    agg: &A,
    due: BTreeMap<i64, Win<K, A::Acc>>,
    size: i64,
) {
    if due.is_empty() {
        return;
    }
    shared.state.lock().started += 1;
    for (start, win) in due {
        for slot in win.slots {
            let acks = Acks::union(&slot.acks);
            let value = std::panic::catch_unwind(AssertUnwindSafe(|| agg.result(&slot.acc)));
            match value {
                Ok(value) => {
                    let result = WindowResult {
                        key: slot.key,
                        start,
                        end: start + size,
                        end_inclusive: false,
                        value,
                    };
                    shared.state.lock().stats.results += 1;
                    forward(&node.out, task, result, acks).await;
                }
                Err(payload) => fail_result(node, task, &*payload, &acks),
            }
        }
    }
    {
        let mut s = shared.state.lock();
        s.accepted = s.started;
    }
    shared.accepted.notify_waiters();
}

/// A panic in the aggregate's `result`: that result is lost (its tokens fail), the others go on.
#[cold]
fn fail_result<T: Item, K: WindowKey, A: Aggregator<T>>(
    node: &Node<ProcessingOp<T, K, A>>,
    task: &Task,
    payload: &(dyn Any + Send),
    acks: &Acks,
) {
    node.out.errors.inc_exact();
    let error = task.panicked_here(payload);
    acks.fail(&error);
    task.fail(error);
}

#[cfg(test)]
mod tests {
    use super::ProcessingWindow;

    #[test]
    fn starts_of_tumbling_and_hopping() {
        let t = ProcessingWindow::tumbling(100);
        assert_eq!(t.starts_of(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(t.starts_of(99).collect::<Vec<_>>(), vec![0]);
        assert_eq!(t.starts_of(100).collect::<Vec<_>>(), vec![100]);
        assert_eq!(t.starts_of(-1).collect::<Vec<_>>(), vec![-100]);
        let h = ProcessingWindow::hopping(100, 30);
        assert_eq!(h.starts_of(95).collect::<Vec<_>>(), vec![0, 30, 60, 90]);
        assert_eq!(h.starts_of(100).collect::<Vec<_>>(), vec![30, 60, 90]);
        let h = ProcessingWindow::hopping(100, 50);
        assert_eq!(h.starts_of(50).collect::<Vec<_>>(), vec![0, 50]);
    }
}
