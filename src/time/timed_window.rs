//! `timed_window`: every `d`, the elements seen since the last tick, as one `Vec`.
//!
//! Why the previous emission is the backpressure (as in Streamz, whose `update` returns the
//! future of the last emission): a window is pushed downstream by the node's task, which awaits
//! that push before it takes the next window. While that push is pending (a slow `sink_async`,
//! a full `buffer`), every `emit` into the node is accepted into the next window and pends
//! until the pending window has been accepted. So a slow consumer slows the producer down at
//! once, not only when a window overflows.
//!
//! Why there is a bound as well: a producer that never pends (downstream keeps up) would
//! otherwise fill a window without limit until the tick. Here a window never holds more than
//! `bound` elements without making `emit` pend (the element that crosses the bound is kept),
//! so memory stays flat; the price is that a producer filling more than `bound` elements per
//! interval waits for the tick. The default bound ([`DEFAULT_TIMED_WINDOW_BOUND`]) is large
//! enough that ordinary rates never meet it.
//!
//! Invariants:
//! - Ticks come every `d` from when the node was built (`interval` with delayed missed ticks:
//!   after a slow downstream emission, the next tick comes at once and the period restarts).
//! - Elements go into exactly one window, in arrival order.
//! - An `emit` made while a window's emission is pending downstream pends until that emission
//!   has been accepted (or the node's task stopped: then it fails). An `emit` also pends while
//!   the current window holds more than the bound, until the task takes the window. Dropping
//!   the `emit` future loses nothing.
//! - Tokens of a window's elements are released once the window has been accepted downstream.
//! - `close()` flushes the current window (when it is not empty) before resolving.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{Either, select};
use tokio::sync::Notify;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

use super::queued::{Admit, Drain};
use crate::graph::Acks;
use crate::graph::sync::{Lock, until};
use crate::graph::task::Mailbox;
use crate::ops::partition::unzip_batch;
use crate::{Error, Item, Stream};

#[derive(Default)]
struct Emissions {
    /// Windows the task has started to push downstream.
    started: u64,
    /// Windows accepted downstream (`started` once the task is idle).
    accepted: u64,
    /// The task stopped: nothing pending will ever be accepted.
    stopped: bool,
}

/// The window emission in flight, which pushes into the node wait for (see the module docs).
#[derive(Default)]
pub(crate) struct Gate {
    emissions: Lock<Emissions>,
    accepted: Notify,
}

impl Gate {
    /// Makes the push in progress wait until the emission in flight, if any, has been accepted.
    pub(crate) fn wait_for_emission(self: &Arc<Self>, node: String, cx: &mut crate::graph::Cx) {
        let pending = {
            let e = self.emissions.lock();
            (e.started > e.accepted).then_some(e.started)
        };
        if let Some(window) = pending {
            let gate = self.clone();
            cx.wait(async move {
                until(&gate.accepted, || {
                    let e = gate.emissions.lock();
                    e.accepted >= window || e.stopped
                })
                .await;
                if gate.emissions.lock().accepted >= window {
                    Ok(())
                } else {
                    Err(Error::Failed {
                        node,
                        message: "the node's task stopped before the pending window was \
                                  accepted downstream"
                            .to_string(),
                    })
                }
            });
        }
    }

    /// Whether a window's emission is pending downstream (a push now would wait for it).
    pub(crate) fn is_busy(&self) -> bool {
        let e = self.emissions.lock();
        e.started > e.accepted && !e.stopped
    }

    /// Pushes `window` downstream from the task, marking it in flight until it is accepted.
    pub(crate) async fn emit<T: Item, M: Send + 'static>(
        &self,
        q: &Drain<T, M, Vec<T>>,
        window: Vec<(T, Acks)>,
    ) where
        Vec<T>: Item,
    {
        let (items, acks) = unzip_batch(window);
        self.emissions.lock().started += 1;
        if let Some(emit) = q.forward_start(items, acks) {
            q.forward_finish(emit).await;
        }
        {
            let mut e = self.emissions.lock();
            e.accepted = e.started;
        }
        self.accepted.notify_waiters();
    }

    /// A guard that marks the task stopped (and wakes every waiting push) when it is dropped.
    pub(crate) fn stop_on_drop(self: &Arc<Self>) -> impl Drop + Send + use<> {
        struct Stop(Arc<Gate>);
        impl Drop for Stop {
            fn drop(&mut self) {
                self.0.emissions.lock().stopped = true;
                self.0.accepted.notify_waiters();
            }
        }
        Stop(self.clone())
    }
}

/// The default [`TimedWindowOptions::bound`].
///
/// ```
/// use brooklet::time::{DEFAULT_TIMED_WINDOW_BOUND, TimedWindowOptions};
/// assert_eq!(TimedWindowOptions::default().get_bound(), DEFAULT_TIMED_WINDOW_BOUND);
/// ```
pub const DEFAULT_TIMED_WINDOW_BOUND: usize = 65_536;

/// How [`Stream::timed_window_with`] behaves: whether empty ticks emit `[]`, and how many
/// elements a window may hold before `emit` pends.
///
/// ```
/// use brooklet::time::TimedWindowOptions;
/// let opts = TimedWindowOptions::default().skip_empty().bound(10);
/// assert!(!opts.emits_empty());
/// assert_eq!(opts.get_bound(), 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedWindowOptions {
    emit_empty: bool,
    bound: usize,
}

impl Default for TimedWindowOptions {
    /// Emits empty windows (as Streamz does), bound [`DEFAULT_TIMED_WINDOW_BOUND`].
    ///
    /// ```
    /// use brooklet::time::{DEFAULT_TIMED_WINDOW_BOUND, TimedWindowOptions};
    /// let opts = TimedWindowOptions::default();
    /// assert!(opts.emits_empty());
    /// assert_eq!(opts.get_bound(), DEFAULT_TIMED_WINDOW_BOUND);
    /// ```
    fn default() -> Self {
        TimedWindowOptions {
            emit_empty: true,
            bound: DEFAULT_TIMED_WINDOW_BOUND,
        }
    }
}

impl TimedWindowOptions {
    /// Ticks with no element emit nothing (instead of `[]`).
    ///
    /// ```
    /// use brooklet::time::TimedWindowOptions;
    /// assert!(!TimedWindowOptions::default().skip_empty().emits_empty());
    /// ```
    pub fn skip_empty(self) -> Self {
        TimedWindowOptions {
            emit_empty: false,
            ..self
        }
    }

    /// How many elements a window may hold before `emit` pends: the `emit` that puts the window
    /// over the bound is accepted, and resolves once the task has taken the window (at the next
    /// tick, which waits for the previous window to be accepted downstream).
    ///
    /// # Panics
    ///
    /// If `bound` is 0.
    ///
    /// ```
    /// use brooklet::time::TimedWindowOptions;
    /// assert_eq!(TimedWindowOptions::default().bound(5).get_bound(), 5);
    /// ```
    pub fn bound(self, bound: usize) -> Self {
        assert!(bound > 0, "timed_window: the bound must be at least 1");
        TimedWindowOptions { bound, ..self }
    }

    /// Whether empty ticks emit `[]`.
    ///
    /// ```
    /// use brooklet::time::TimedWindowOptions;
    /// assert!(TimedWindowOptions::default().emits_empty());
    /// ```
    pub fn emits_empty(&self) -> bool {
        self.emit_empty
    }

    /// The bound (see [`bound`](Self::bound)).
    ///
    /// ```
    /// use brooklet::time::{TimedWindowOptions, DEFAULT_TIMED_WINDOW_BOUND};
    /// assert_eq!(TimedWindowOptions::default().get_bound(), DEFAULT_TIMED_WINDOW_BOUND);
    /// ```
    pub fn get_bound(&self) -> usize {
        self.bound
    }
}

impl<T: Item> Stream<T> {
    /// Every `d`, emits the elements that arrived since the previous tick as a `Vec`, in
    /// arrival order; a tick with none emits `[]` (as Streamz does). See
    /// [`timed_window_with`](Self::timed_window_with) to skip empty ticks or change the bound.
    ///
    /// # Panics
    ///
    /// If `d` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let windows = source.timed_window(Duration::from_millis(100)).sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// sleep(Duration::from_millis(150)).await; // tick at 100 ms: [1, 2]
    /// source.emit(3).await?;
    /// sleep(Duration::from_millis(200)).await; // ticks at 200 ms: [3], at 300 ms: []
    /// source.close().await?;
    /// assert_eq!(windows.snapshot(), vec![vec![1, 2], vec![3], vec![]]);
    /// # Ok(()) }
    /// ```
    pub fn timed_window(&self, d: Duration) -> Stream<Vec<T>> {
        self.timed_window_with(d, TimedWindowOptions::default())
    }

    /// Like [`timed_window`](Self::timed_window), with [`TimedWindowOptions`].
    ///
    /// The window is pushed downstream by the node's task, which awaits that push before it
    /// takes the next window. While that push is pending downstream, as in Streamz, every
    /// `emit` into the node is accepted into the next window and pends until the pending window
    /// has been accepted: a slow consumer slows the producer at once. As a safety net, a window
    /// never holds more than `options.bound` elements without making `emit` pend (a producer
    /// faster than `bound` per interval waits for the tick). Tokens are held
    /// until the window built from the element is accepted downstream. `close()` emits the
    /// current window (unless empty) and resolves once it has been accepted. A panic downstream
    /// is reported on the next `emit` or by `close()`.
    ///
    /// # Panics
    ///
    /// If `d` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use brooklet::time::TimedWindowOptions;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let opts = TimedWindowOptions::default().skip_empty();
    /// let windows = source.timed_window_with(Duration::from_millis(100), opts).sink_to_vec();
    /// source.emit('a').await?;
    /// sleep(Duration::from_millis(350)).await; // ticks at 200 and 300 ms are empty
    /// source.emit('b').await?;
    /// source.close().await?; // flushes ['b']
    /// assert_eq!(windows.snapshot(), vec![vec!['a'], vec!['b']]);
    /// # Ok(()) }
    /// ```
    pub fn timed_window_with(&self, d: Duration, options: TimedWindowOptions) -> Stream<Vec<T>> {
        assert!(
            !d.is_zero(),
            "timed_window: the interval must be greater than zero"
        );
        assert!(
            options.bound > 0,
            "timed_window: the bound must be at least 1"
        );
        let mailbox = Mailbox::new(options.bound);
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let busy = gate.clone();
        let admit = Admit::HookWhileBusy(
            Box::new(move |x, mailbox: &_, out: &_, cx: &mut _| {
                g.wait_for_emission(out.name(), cx);
                Mailbox::put(mailbox, x, cx);
            }),
            Box::new(move || busy.is_busy()),
        );
        self.queued("timed_window", mailbox, options.bound, admit, move |q| {
            let ticks = ticks(d);
            run_windows(q, ticks, options, gate, |window| window)
        })
    }
}

/// Ticks every `d` from now (see the module invariants).
pub(crate) fn ticks(d: Duration) -> Interval {
    let mut ticks = interval_at(super::after(Instant::now(), d), d);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// The task loop of a timed window: at each tick (and at the end) takes what the mailbox holds,
/// turns it into a window with `shape`, and pushes it through `gate`.
pub(crate) async fn run_windows<T: Item, M: Send + 'static>(
    q: Drain<T, M, Vec<T>>,
    mut ticks: Interval,
    options: TimedWindowOptions,
    gate: Arc<Gate>,
    mut shape: impl FnMut(Vec<(M, Acks)>) -> Vec<(T, Acks)> + Send,
) {
    let _stop = gate.stop_on_drop();
    loop {
        let closed = {
            let tick = pin!(ticks.tick());
            let closed = pin!(q.mailbox.closed());
            matches!(select(tick, closed).await, Either::Right(_))
        };
        // A downstream slower than `d` makes every tick late, so the tick is always ready
        // first: look at the close as well, or it is never seen.
        let closed = closed || q.mailbox.is_closed();
        let window = shape(q.mailbox.take_all());
        if !window.is_empty() || (options.emit_empty && !closed) {
            gate.emit(&q, window).await;
        }
        if closed {
            break;
        }
    }
}
