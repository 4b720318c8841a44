//! `timed_window`: every `d`, the elements seen since the last tick, as one `Vec`.
//!
//! Why the previous emission is the backpressure (as in Streamz): a window is pushed downstream
//! by the node's task, which awaits that push before it takes the next window. While it waits,
//! the next window fills; once that window is over its bound, `emit` pends until the task takes
//! it, that is until the previous window has been accepted and the next tick came. So a slow
//! consumer slows the producer down.
//!
//! Why the bound holds whatever downstream does: Streamz bounds a window only while the previous
//! emission is pending, so a producer that never pends fills a window without limit until the
//! tick. Here a window never holds more than `bound` elements without making `emit` pend
//! (the element that crosses the bound is kept), so memory stays flat; the price is that a
//! producer filling more than `bound` elements per interval waits for the tick. The default
//! bound ([`DEFAULT_TIMED_WINDOW_BOUND`]) is large enough that ordinary rates never meet it.
//!
//! Invariants:
//! - Ticks come every `d` from when the node was built (`interval` with delayed missed ticks:
//!   after a slow downstream emission, the next tick comes at once and the period restarts).
//! - Elements go into exactly one window, in arrival order.
//! - `emit` pends while the current window holds more than the bound, until the task takes the
//!   window (which it does only once the previous window has been accepted); dropping the
//!   `emit` future loses nothing.
//! - Tokens of a window's elements are released once the window has been accepted downstream.
//! - `close()` flushes the current window (when it is not empty) before resolving.

use std::pin::pin;
use std::time::Duration;

use futures::future::{Either, select};
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::queued::Admit;
use crate::graph::task::Mailbox;
use crate::ops::partition::unzip_batch;
use crate::{Item, Stream};

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
    /// takes the next window: while it is pending, the next window fills, and the `emit` that
    /// puts it over `options.bound` elements pends until the task takes it. So a slow consumer
    /// slows the producer, and a window never holds more than `bound` elements without making
    /// `emit` pend (a producer faster than `bound` per interval waits for the tick). Tokens are held
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
        self.queued(
            "timed_window",
            mailbox,
            options.bound,
            Admit::Queue(|x| x),
            move |q| {
                let mut ticks = interval_at(super::after(Instant::now(), d), d);
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                async move {
                    loop {
                        let closed = {
                            let tick = pin!(ticks.tick());
                            let closed = pin!(q.mailbox.closed());
                            matches!(select(tick, closed).await, Either::Right(_))
                        };
                        let window = q.mailbox.take_all();
                        if !window.is_empty() || (options.emit_empty && !closed) {
                            let (items, acks) = unzip_batch(window);
                            q.forward(items, acks).await;
                        }
                        if closed {
                            break;
                        }
                    }
                }
            },
        )
    }
}
