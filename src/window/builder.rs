//! The window builder on [`Stream`] and the [`Windowed`] handle it returns.
//!
//! `stream.window(kind)` starts a builder; settings come next in any order; an aggregate
//! (`sum`, `count`, ..., or [`aggregate`](WindowBuilder::aggregate)) ends it and adds the node.

use std::fmt;
use std::ops::{Add, Deref};
use std::sync::Arc;
use std::time::Duration;

use super::aggregate::{self, Aggregator, Extract};
use super::assign::{IntoMillis, Window, WindowKind};
use super::count::CountOp;
use super::hopping::PaneStore;
use super::late::LateOut;
use super::operator::{
    Built, Config, Control, KeyFn, Store, TimeWindowOp, TsFn, WindowKey, spawn_idle,
};
use super::result::{LateEvent, WindowResult, WindowStats};
use super::sliding::SlidingStore;
use super::tumbling::WindowStore;
use crate::graph::{Emit, Node, NodeDyn};
use crate::{Item, Stream};

/// When results are emitted.
///
/// ```
/// use brooklet::window::EmitMode;
/// assert_eq!(EmitMode::default(), EmitMode::Final);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitMode {
    /// Once per (key, window), when the window closes; then its state is dropped.
    #[default]
    Final,
    /// After every accepted event, once per window it updated (ascending start); nothing at
    /// close.
    Current,
}

/// What a count window does at end of stream with a partial window that holds an event no
/// emitted window held.
///
/// ```
/// use brooklet::window::Leftover;
/// assert_eq!(Leftover::default(), Leftover::Flush);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Leftover {
    /// Emit it.
    #[default]
    Flush,
    /// Drop it.
    Discard,
}

/// Settings of a window operator being built: see [`Stream::window`].
///
/// Durations are `i64` milliseconds or [`Duration`]s (rounded to the nearest ms): see
/// [`IntoMillis`].
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::Window;
/// let source = Source::<(i64, f64)>::new();
/// let _means = source.window(Window::tumbling(1_000)).timestamp(|r| r.0).mean(|r| r.1);
/// ```
///
/// A keyed hopping window with grace and a late output: every second, the sum of each
/// sensor's last ten seconds.
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::{Window, WindowResult};
///
/// #[derive(Clone)]
/// struct Reading { sensor: u32, ts: i64, value: f64 }
///
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let sums = source
///     .window(Window::hopping(10_000, 1_000))
///     .timestamp(|r: &Reading| r.ts)
///     .key_by(|r| r.sensor)
///     .grace(2_000)
///     .sum(|r| r.value);
/// let late = sums.late().sink_to_vec();
/// let out = sums.sink_to_vec();
/// source.emit(Reading { sensor: 1, ts: 500, value: 1.5 }).await?;
/// source.emit(Reading { sensor: 1, ts: 13_000, value: 2.0 }).await?; // watermark 11 s
/// // The ten windows holding 500 ms ([-9 s, 1 s) .. [0 s, 10 s)) all end at or before the
/// // watermark: closed, in ascending end.
/// let closed = out.snapshot();
/// assert_eq!(closed.len(), 10);
/// assert_eq!(closed[0], WindowResult { key: 1, start: -9_000, end: 1_000, end_inclusive: false, value: 1.5 });
/// assert_eq!(closed[9], WindowResult { key: 1, start: 0, end: 10_000, end_inclusive: false, value: 1.5 });
/// source.emit(Reading { sensor: 1, ts: 700, value: 9.9 }).await?; // too late for every window
/// assert_eq!(late.snapshot().len(), 1);
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct WindowBuilder<T: Item, K> {
    stream: Stream<T>,
    window: Window,
    ts: Option<TsFn<T>>,
    key: KeyFn<T, K>,
    grace: i64,
    mode: EmitMode,
    explicit: bool,
    per_key: bool,
    idle: Option<Duration>,
    skew: Option<i64>,
    drop_negative: bool,
    leftover: Leftover,
    watermarks: Option<Stream<i64>>,
}

impl<T: Item, K> fmt::Debug for WindowBuilder<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowBuilder")
            .field("window", &self.window)
            .field("grace", &self.grace)
            .field("mode", &self.mode)
            .field("explicit", &self.explicit)
            .field("per_key", &self.per_key)
            .finish_non_exhaustive()
    }
}

impl<T: Item> Stream<T> {
    /// Starts building an event-time (or count) window operator on this stream. See the
    /// [`window`](crate::window) module for the rules, [`WindowBuilder`] for the settings.
    ///
    /// "Every second, predict from the samples of the previous 10 seconds" is one line:
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # fn predict(xs: &[f64]) -> f64 { xs.iter().sum::<f64>() / xs.len() as f64 }
    /// # futures::executor::block_on(async {
    /// let samples = Source::<(i64, f64)>::new();
    /// let predictions = samples
    ///     .window(Window::hopping(10_000, 1_000)).timestamp(|s| s.0).collect(|s| s.1)
    ///     .map(|w| (w.end, predict(&w.value)))
    ///     .sink_to_vec();
    /// samples.emit((0, 1.0)).await?;
    /// samples.emit((1_000, 3.0)).await?;
    /// samples.close().await?;
    /// assert_eq!(predictions.snapshot()[0], (1_000, 1.0));
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn window(&self, window: Window) -> WindowBuilder<T, ()> {
        WindowBuilder {
            stream: self.clone(),
            window,
            ts: None,
            key: Arc::new(|_: &T| ()),
            grace: 0,
            mode: EmitMode::Final,
            explicit: false,
            per_key: false,
            idle: None,
            skew: None,
            drop_negative: false,
            leftover: Leftover::Flush,
            watermarks: None,
        }
    }
}

impl<T: Item, K: WindowKey> WindowBuilder<T, K> {
    /// How to read an event's timestamp (ms since the epoch). Required for time windows;
    /// optional for count windows, which then report event indexes as bounds.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// let source = Source::<(i64, u32)>::new();
    /// let _ = source.window(Window::tumbling(60_000)).timestamp(|e| e.0).count();
    /// ```
    pub fn timestamp(mut self, f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        self.ts = Some(Arc::new(f));
        self
    }

    /// Groups events by `f(event)`: each key has its own windows. Unkeyed streams use the key
    /// `()`. A key that is `None` is a key like any other.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// let source = Source::<(i64, Option<u8>)>::new();
    /// let _ = source.window(Window::tumbling(1_000)).timestamp(|e| e.0).key_by(|e| e.1).count();
    /// ```
    pub fn key_by<K2: WindowKey>(
        self,
        f: impl Fn(&T) -> K2 + Send + Sync + 'static,
    ) -> WindowBuilder<T, K2> {
        WindowBuilder {
            stream: self.stream,
            window: self.window,
            ts: self.ts,
            key: Arc::new(f),
            grace: self.grace,
            mode: self.mode,
            explicit: self.explicit,
            per_key: self.per_key,
            idle: self.idle,
            skew: self.skew,
            drop_negative: self.drop_negative,
            leftover: self.leftover,
            watermarks: self.watermarks,
        }
    }

    /// How long after a window's end it still accepts events: watermark = clock − grace.
    /// Default 0.
    ///
    /// # Panics
    ///
    /// If `grace` is negative.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// let source = Source::<i64>::new();
    /// let _ = source.window(Window::tumbling(1_000)).timestamp(|t| *t).grace(Duration::from_secs(5)).count();
    /// ```
    pub fn grace(mut self, grace: impl IntoMillis) -> Self {
        let grace = grace.into_millis();
        assert!(grace >= 0, "window: grace must be >= 0 ms, got {grace}");
        self.grace = grace;
        self
    }

    /// [`EmitMode::Final`] (default) or [`EmitMode::Current`].
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::{EmitMode, Window};
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let running = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t)
    ///     .emit_mode(EmitMode::Current).count().sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// let counts: Vec<u64> = running.snapshot().into_iter().map(|w| w.value).collect();
    /// assert_eq!(counts, vec![1, 2]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn emit_mode(mut self, mode: EmitMode) -> Self {
        self.mode = mode;
        self
    }

    /// Only explicit watermarks ([`Windowed::advance`], or [`watermarks`](Self::watermarks))
    /// move the clock; event timestamps do not. A regression is ignored.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let w = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t).explicit_watermarks().count();
    /// let out = w.sink_to_vec();
    /// source.emit(5).await?;
    /// source.emit(50).await?; // does not close [0, 10)
    /// assert!(out.snapshot().is_empty());
    /// w.advance(10).await?;
    /// assert_eq!(out.snapshot().len(), 1);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn explicit_watermarks(mut self) -> Self {
        self.explicit = true;
        self
    }

    /// Takes watermarks (event-time ms) from `watermarks`, and only from there (implies
    /// [`explicit_watermarks`](Self::explicit_watermarks)). The operator ends when both its
    /// input and the watermark stream have ended.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let (events, marks) = (Source::new(), Source::new());
    /// let out = events.window(Window::tumbling(10)).timestamp(|t: &i64| *t).watermarks(&marks).count().sink_to_vec();
    /// events.emit(3).await?;
    /// marks.emit(10).await?;
    /// assert_eq!(out.snapshot()[0].value, 1);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn watermarks(mut self, watermarks: &Stream<i64>) -> Self {
        self.explicit = true;
        self.watermarks = Some(watermarks.clone());
        self
    }

    /// One clock per key (Quix's default) instead of one for the operator: a key's windows
    /// close with that key's own events (or an explicit watermark, an idle tick, the end).
    ///
    /// Memory: a key whose windows have all closed is freed but for its clock, kept in one
    /// small `(key, clock)` entry ([`WindowStats::retired_keys`]) so that its late events are
    /// still recognised if it comes back. Explicit watermarks and idle ticks move those clocks
    /// too, at a cost that grows with the number of keys ever seen.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let w = source.window(Window::tumbling(10)).timestamp(|e: &(char, i64)| e.1)
    ///     .key_by(|e| e.0).per_key_clock().count();
    /// let (out, late) = (w.sink_to_vec(), w.late().sink_to_vec());
    /// source.emit(('a', 1)).await?;
    /// source.emit(('b', 99)).await?; // b's clock only
    /// assert!(out.snapshot().is_empty());
    /// w.advance(100).await?; // every key's clock: a and b are closed, and freed
    /// assert_eq!((w.stats().keys, w.stats().retired_keys), (0, 2));
    /// source.emit(('a', 50)).await?; // still late for a's clock
    /// assert_eq!(late.snapshot().len(), 1);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn per_key_clock(mut self) -> Self {
        self.per_key = true;
        self
    }

    /// When no event arrives for `timeout` of processing time (the tokio clock), the event
    /// clock advances with processing time: by the time elapsed since the last event, then by
    /// each further `timeout`. So the last windows of a quiet stream are emitted. Runs a timer
    /// task on the ambient tokio runtime.
    ///
    /// # Panics
    ///
    /// If `timeout` is not > 0 ms, or (when the aggregate is chosen) outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(1_000)).timestamp(|t: &i64| *t)
    ///     .idle_timeout(5_000).count().sink_to_vec();
    /// source.emit(100).await?;
    /// tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    /// assert_eq!(out.snapshot().len(), 1);
    /// # Ok(()) }
    /// ```
    pub fn idle_timeout(mut self, timeout: impl IntoMillis) -> Self {
        let ms = timeout.into_millis();
        assert!(ms > 0, "window: the idle timeout must be > 0 ms, got {ms}");
        self.idle = Some(Duration::from_millis(ms as u64));
        self
    }

    /// An event more than `skew` ahead of the clock is still counted, but does not move the
    /// clock (so one bad timestamp cannot close every window).
    ///
    /// # Panics
    ///
    /// If `skew` is negative.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t).max_future_skew(1_000).count().sink_to_vec();
    /// source.emit(5).await?;
    /// source.emit(1_000_000_000).await?; // counted, clock stays at 5
    /// assert!(out.snapshot().is_empty());
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn max_future_skew(mut self, skew: impl IntoMillis) -> Self {
        let skew = skew.into_millis();
        assert!(
            skew >= 0,
            "window: the maximum future skew must be >= 0 ms, got {skew}"
        );
        self.skew = Some(skew);
        self
    }

    /// Drops tumbling and hopping windows that start below 0 (parity with Quix and Kafka
    /// Streams). Events only such windows would hold are ignored.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::hopping(10, 5)).timestamp(|t: &i64| *t).drop_negative_starts().count().sink_to_vec();
    /// source.emit(1).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot().iter().map(|w| w.start).collect::<Vec<_>>(), vec![0]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn drop_negative_starts(mut self) -> Self {
        self.drop_negative = true;
        self
    }

    /// What count windows do with a partial window at end of stream (default
    /// [`Leftover::Flush`]).
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::{Leftover, Window};
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::count(2)).leftover(Leftover::Discard).count().sink_to_vec();
    /// for x in 0..3 { source.emit(x).await?; }
    /// source.close().await?;
    /// assert_eq!(out.snapshot().len(), 1);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn leftover(mut self, leftover: Leftover) -> Self {
        self.leftover = leftover;
        self
    }

    /// Ends the builder with any [`Aggregator`], a tuple of them included, and adds the node.
    ///
    /// # Panics
    ///
    /// For a time window without [`timestamp`](Self::timestamp); with an
    /// [`idle_timeout`](Self::idle_timeout) outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::{aggregate::{count, sum}, Window};
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t)
    ///     .aggregate((count(), sum(|t: &i64| *t))).sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, (2, 3));
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn aggregate<A: Aggregator<T>>(self, agg: A) -> Windowed<T, K, A::Out> {
        let late = LateOut::new();
        let late_stream = late.stream();
        let (stream, ctl): Built<K, A::Out> = match self.window.kind() {
            WindowKind::Count { n, step } => {
                let op = CountOp::new(
                    n,
                    step,
                    self.ts.clone(),
                    self.key.clone(),
                    agg,
                    self.mode,
                    self.leftover,
                    late,
                );
                let node = self.stream.then_node("count_window", op);
                node.op.late.set_owner(node.clone());
                (Stream::from_node(node.clone()), node)
            }
            WindowKind::Tumbling { .. } => {
                self.build::<A, WindowStore<A::Acc>>("tumbling_window", agg, late)
            }
            WindowKind::Hopping { .. } if A::MERGEABLE => {
                self.build::<A, PaneStore<A::Acc>>("hopping_window", agg, late)
            }
            WindowKind::Hopping { .. } => {
                self.build::<A, WindowStore<A::Acc>>("hopping_window", agg, late)
            }
            WindowKind::Sliding { .. } => {
                self.build::<A, SlidingStore<A::Acc, T>>("sliding_window", agg, late)
            }
        };
        Windowed {
            stream,
            late: late_stream,
            ctl,
        }
    }

    fn build<A: Aggregator<T>, S: Store<T, A>>(
        &self,
        kind: &'static str,
        agg: A,
        late: LateOut<K, T>,
    ) -> Built<K, A::Out> {
        let ts = self.ts.clone().unwrap_or_else(|| {
            panic!("window: {kind} needs `.timestamp(|event| ms)` to read event time")
        });
        let cfg = Config {
            geo: self
                .window
                .geometry(self.drop_negative)
                .expect("a time window"),
            grace: self.grace,
            mode: self.mode,
            explicit: self.explicit,
            per_key: self.per_key,
            skew: self.skew,
            idle: self.idle,
        };
        if self.idle.is_some() {
            // Panics outside a runtime before the node is added, not after: a failed build
            // leaves the graph as it was.
            crate::graph::task::runtime("window idle_timeout");
        }
        let op = TimeWindowOp::<T, K, A, S>::new(cfg, ts, self.key.clone(), agg, late);
        let node: Arc<Node<TimeWindowOp<T, K, A, S>>> = self.stream.then_node(kind, op);
        let owner: Arc<dyn NodeDyn> = node.clone();
        node.op.late.set_owner(owner.clone());
        node.op.task.bind(owner);
        if let Some(marks) = &self.watermarks {
            node.link_port::<1>(marks);
        }
        if let Some(timeout) = self.idle {
            spawn_idle(&node, timeout);
        }
        (Stream::from_node(node.clone()), node)
    }

    /// Sums `f(event)` per window.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(10)).timestamp(|e: &(i64, u32)| e.0).sum(|e| e.1).sink_to_vec();
    /// source.emit((1, 5)).await?;
    /// source.emit((2, 6)).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 11);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn sum<V>(self, f: impl Extract<T, V>) -> Windowed<T, K, V>
    where
        V: Item + Default + Add<Output = V> + Copy,
    {
        self.aggregate(aggregate::sum(f))
    }

    /// Counts events per window.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::count(2)).count().sink_to_vec();
    /// for x in ["a", "b"] { source.emit(x).await?; }
    /// assert_eq!(out.snapshot()[0].value, 2);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn count(self) -> Windowed<T, K, u64> {
        self.aggregate(aggregate::count())
    }

    /// The mean of `f(event)` per window, by IEEE arithmetic: one NaN value makes the window's
    /// mean NaN.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::count(2)).mean(|x: &u8| *x as f64).sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// assert_eq!(out.snapshot()[0].value, 1.5);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn mean(self, f: impl Extract<T, f64>) -> Windowed<T, K, f64> {
        self.aggregate(aggregate::mean(f))
    }

    /// The smallest `f(event)` per window. NaN values are ignored (as [`f64::min`] does), in
    /// every window kind and whatever the order of arrival: NaN only when every value is NaN.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::count(2)).min(|x: &i32| *x).sink_to_vec();
    /// source.emit(4).await?;
    /// source.emit(-4).await?;
    /// assert_eq!(out.snapshot()[0].value, -4);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn min<V: Item + PartialOrd>(self, f: impl Extract<T, V>) -> Windowed<T, K, V> {
        self.aggregate(aggregate::min(f))
    }

    /// The largest `f(event)` per window. NaN values are ignored (as [`f64::max`] does), in
    /// every window kind and whatever the order of arrival: NaN only when every value is NaN.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::count(2)).max(|x: &i32| *x).sink_to_vec();
    /// source.emit(4).await?;
    /// source.emit(-4).await?;
    /// assert_eq!(out.snapshot()[0].value, 4);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn max<V: Item + PartialOrd>(self, f: impl Extract<T, V>) -> Windowed<T, K, V> {
        self.aggregate(aggregate::max(f))
    }

    /// `f` of the earliest event (by event time, ties by arrival) per window.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(10)).timestamp(|e: &(i64, char)| e.0).first(|e| e.1).sink_to_vec();
    /// source.emit((5, 'b')).await?;
    /// source.emit((3, 'a')).await?; // earlier in event time
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 'a');
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn first<V: Item>(self, f: impl Extract<T, V>) -> Windowed<T, K, V> {
        self.aggregate(aggregate::first(f))
    }

    /// `f` of the latest event (by event time, ties by arrival) per window.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(10)).timestamp(|e: &(i64, char)| e.0).last(|e| e.1).sink_to_vec();
    /// source.emit((5, 'b')).await?;
    /// source.emit((3, 'a')).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, 'b');
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn last<V: Item>(self, f: impl Extract<T, V>) -> Windowed<T, K, V> {
        self.aggregate(aggregate::last(f))
    }

    /// Every `f(event)` per window, ordered by event time, then arrival.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::tumbling(10)).timestamp(|e: &(i64, char)| e.0).collect(|e| e.1).sink_to_vec();
    /// source.emit((5, 'b')).await?;
    /// source.emit((3, 'a')).await?;
    /// source.close().await?;
    /// assert_eq!(out.snapshot()[0].value, vec!['a', 'b']);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn collect<V: Item>(self, f: impl Extract<T, V>) -> Windowed<T, K, Vec<V>> {
        self.aggregate(aggregate::collect(f))
    }

    /// Folds events into `init` with `f`, in arrival order, per window. `f` gets a copy of the
    /// window's value (as [`accumulate`](crate::Stream::accumulate) does), so a panic in `f`
    /// leaves every window as it was before the event.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let out = source.window(Window::count(3)).reduce(1u64, |p, x: &u64| p * x).sink_to_vec();
    /// for x in [2, 3, 4] { source.emit(x).await?; }
    /// assert_eq!(out.snapshot()[0].value, 24);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn reduce<R: Item + Sync>(
        self,
        init: R,
        f: impl Fn(R, &T) -> R + Send + Sync + 'static,
    ) -> Windowed<T, K, R> {
        self.aggregate(aggregate::reduce(init, f))
    }
}

/// A window operator: dereferences to its result stream, and gives its
/// [`late`](Windowed::late) stream, explicit watermarks and counters.
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::Window;
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let w = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t).count();
/// let results = w.sink_to_vec(); // a Stream method, through Deref
/// let late = w.late().sink_to_vec();
/// source.emit(25).await?;
/// source.emit(3).await?; // [0, 10) closed at watermark 25
/// assert_eq!(late.snapshot()[0].rejected, vec![(0, 10)]);
/// assert_eq!(w.stats().late_events, 1);
/// # let _ = results;
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
pub struct Windowed<T: Item, K: Item, V: Item> {
    stream: Stream<WindowResult<K, V>>,
    late: Stream<LateEvent<K, T>>,
    ctl: Arc<dyn Control>,
}

impl<T: Item, K: Item, V: Item> Clone for Windowed<T, K, V> {
    fn clone(&self) -> Self {
        Windowed {
            stream: self.stream.clone(),
            late: self.late.clone(),
            ctl: self.ctl.clone(),
        }
    }
}

impl<T: Item, K: Item, V: Item> fmt::Debug for Windowed<T, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Windowed")
            .field("name", &self.stream.name())
            .field("stats", &self.ctl.stats())
            .finish()
    }
}

impl<T: Item, K: Item, V: Item> Deref for Windowed<T, K, V> {
    type Target = Stream<WindowResult<K, V>>;

    fn deref(&self) -> &Self::Target {
        &self.stream
    }
}

impl<T: Item, K: Item, V: Item> Windowed<T, K, V> {
    /// The late-event stream: one [`LateEvent`] per event that a closed window rejected.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let w = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t).count();
    /// let late = w.late().map(|l| l.value).sink_to_vec();
    /// source.emit(20).await?;
    /// source.emit(1).await?;
    /// assert_eq!(late.snapshot(), vec![1]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn late(&self) -> Stream<LateEvent<K, T>> {
        self.late.clone()
    }

    /// The result stream (what `Deref` gives, as an owned handle).
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// let source = Source::<u8>::new();
    /// let results = source.window(Window::count(2)).count().stream();
    /// assert_eq!(results.name(), "count_window");
    /// ```
    pub fn stream(&self) -> Stream<WindowResult<K, V>> {
        self.stream.clone()
    }

    /// An explicit watermark: moves the event clock to `t` (a regression is ignored) and
    /// closes what is due. Works in every clock mode; with a per-key clock it moves every
    /// key's clock. Count windows ignore it.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let w = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t).count();
    /// let out = w.sink_to_vec();
    /// source.emit(4).await?;
    /// w.advance(10).await?;
    /// assert_eq!(out.snapshot()[0].end, 10);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn advance(&self, t: i64) -> Emit {
        self.ctl.advance(t)
    }

    /// The operator's counters.
    ///
    /// ```
    /// use brooklet::Source;
    /// use brooklet::window::Window;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let w = source.window(Window::tumbling(10)).timestamp(|t: &i64| *t).count();
    /// source.emit(4).await?;
    /// assert_eq!((w.stats().events, w.stats().watermark), (1, Some(4)));
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn stats(&self) -> WindowStats {
        self.ctl.stats()
    }
}
