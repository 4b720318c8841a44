//! `Source::from_periodic`: a source that polls a function at a fixed interval.
//!
//! Built on [`Source::from_stream`], so it shares its contract: [`Source::run`] drives it,
//! awaiting each emission (backpressure: a slow graph delays the next poll rather than piling
//! up values), then closes the source and waits for the graph to drain.
//!
//! Invariants:
//! - `f` is called at once when `run` starts, then every `d` (a tokio `interval` whose missed
//!   ticks are delayed: after a slow emission the next call comes at once and the period
//!   restarts from there).
//! - The source ends when `f` returns `None`, or when it is closed.

use std::time::Duration;

use tokio::time::{MissedTickBehavior, interval};

use crate::graph::task::runtime;
use crate::{Item, Source};

impl<T: Item> Source<T> {
    /// A source that [`run`](Source::run) fills by calling `f` at once and then every `d`,
    /// emitting each `Some` value; it ends (closes and drains) when `f` returns `None`, or
    /// earlier if the source is closed. `run` awaits each emission before the next tick, so a
    /// slow graph delays the polls instead of queueing values.
    ///
    /// Reads the clock of the ambient tokio runtime.
    ///
    /// # Panics
    ///
    /// If `d` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::Instant;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let start = Instant::now();
    /// let mut count = 0;
    /// let source = Source::from_periodic(Duration::from_secs(1), move || {
    ///     count += 1;
    ///     (count <= 3).then_some(count)
    /// });
    /// let seen = source
    ///     .map(move |x: u32| (x, start.elapsed().as_secs()))
    ///     .sink_to_vec();
    /// source.run().await?;
    /// assert_eq!(seen.snapshot(), vec![(1, 0), (2, 1), (3, 2)]);
    /// # Ok(()) }
    /// ```
    pub fn from_periodic(
        d: Duration,
        mut f: impl FnMut() -> Option<T> + Send + 'static,
    ) -> Source<T> {
        assert!(
            !d.is_zero(),
            "from_periodic: the interval must be greater than zero"
        );
        let _ = runtime("from_periodic");
        Source::from_stream(async_stream::stream! {
            let mut ticks = interval(d);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match f() {
                    Some(x) => yield x,
                    None => break,
                }
            }
        })
    }
}
