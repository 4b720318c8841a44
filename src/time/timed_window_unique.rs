//! `timed_window_unique`: every `d`, one element per key among those seen since the last tick
//! (Streamz's `timed_window_unique`).
//!
//! It is `timed_window` with deduplication when the window is taken: the same task, the same
//! ticks, the same backpressure (an `emit` made while a window's emission is pending downstream
//! waits for it) and the same bound as a safety net. Why deduplicate at the tick rather than on
//! the push: the elements wait in the node's mailbox, which already carries the backpressure,
//! the failure of held tokens when the task dies, and the teardown; a window only needs its
//! keys sorted out once.
//!
//! Invariants:
//! - The key function runs on the caller's push, before the element is accepted: a panic in it
//!   unwinds to the caller of `emit` and the window is left as it was.
//! - A window keeps, per key, the first or the last element it received, in arrival order of
//!   the elements kept; the tokens of the elements it dropped are released with the window's.
//! - The bound counts elements received in the window, duplicates included.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::queued::Admit;
use super::timed_window::{Gate, TimedWindowOptions, run_windows, ticks};
use crate::graph::task::Mailbox;
use crate::ops::Keep;
use crate::ops::partition_unique::Distinct;
use crate::{Item, Stream};

impl<T: Item> Stream<T> {
    /// Every `d`, emits the elements that arrived since the previous tick, keeping one
    /// element per key: the first one of the window ([`Keep::First`]) or the latest
    /// ([`Keep::Last`]), as Streamz's `timed_window_unique`. Elements keep their relative
    /// arrival order (with `Keep::Last`, a repeated key takes the place of its latest element).
    /// A tick with no element emits `[]`, as Streamz does; see
    /// [`timed_window_unique_with`](Self::timed_window_unique_with) to skip empty ticks or
    /// change the bound. Use `|x| x.clone()` as the key to deduplicate whole elements.
    ///
    /// Backpressure, bound, tokens and `close()` behave as in
    /// [`timed_window_with`](Self::timed_window_with); a dropped duplicate's token is
    /// released with its window's. A panic in `key` unwinds to the caller of `emit`, and the
    /// element is not added to the window.
    ///
    /// # Panics
    ///
    /// If `d` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use brooklet::ops::Keep;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let d = Duration::from_millis(100);
    /// let first = source.timed_window_unique(d, |s: &&str| s.len(), Keep::First).sink_to_vec();
    /// let last = source.timed_window_unique(d, |s: &&str| s.len(), Keep::Last).sink_to_vec();
    /// for s in ["f", "b", "fo", "ba", "foo", "bar"] {
    ///     source.emit(s).await?;
    /// }
    /// sleep(Duration::from_millis(150)).await; // the tick at 100 ms
    /// source.close().await?;
    /// // Streamz's own examples.
    /// assert_eq!(first.snapshot(), vec![vec!["f", "fo", "foo"]]);
    /// assert_eq!(last.snapshot(), vec![vec!["b", "ba", "bar"]]);
    /// # Ok(()) }
    /// ```
    pub fn timed_window_unique<K>(
        &self,
        d: Duration,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
        keep: Keep,
    ) -> Stream<Vec<T>>
    where
        K: Hash + Eq + Send + 'static,
    {
        self.timed_window_unique_with(d, key, keep, TimedWindowOptions::default())
    }

    /// Like [`timed_window_unique`](Self::timed_window_unique), with
    /// [`TimedWindowOptions`](crate::time::TimedWindowOptions).
    ///
    /// # Panics
    ///
    /// If `d` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use brooklet::ops::Keep;
    /// use brooklet::time::TimedWindowOptions;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let opts = TimedWindowOptions::default().skip_empty();
    /// let windows = source
    ///     .timed_window_unique_with(Duration::from_millis(100), |x: &u8| *x, Keep::First, opts)
    ///     .sink_to_vec();
    /// for x in [1, 2, 1] {
    ///     source.emit(x).await?;
    /// }
    /// sleep(Duration::from_millis(350)).await; // ticks at 200 and 300 ms are empty
    /// source.close().await?;
    /// assert_eq!(windows.snapshot(), vec![vec![1, 2]]);
    /// # Ok(()) }
    /// ```
    pub fn timed_window_unique_with<K>(
        &self,
        d: Duration,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
        keep: Keep,
        options: TimedWindowOptions,
    ) -> Stream<Vec<T>>
    where
        K: Hash + Eq + Send + 'static,
    {
        assert!(
            !d.is_zero(),
            "timed_window_unique: the interval must be greater than zero"
        );
        let mailbox = Mailbox::new(options.get_bound());
        let gate = Arc::new(Gate::default());
        let g = gate.clone();
        let busy = gate.clone();
        let admit = Admit::HookWhileBusy(
            Box::new(move |x: T, mailbox: &_, out: &_, cx: &mut _| {
                let k = crate::graph::Outputs::call(out, || key(&x));
                g.wait_for_emission(out.name(), cx);
                Mailbox::put(mailbox, (k, x), cx);
            }),
            Box::new(move || busy.is_busy()),
        );
        self.queued(
            "timed_window_unique",
            mailbox,
            options.get_bound(),
            admit,
            move |q| {
                let ticks = ticks(d);
                run_windows(q, ticks, options, gate, move |window| {
                    let mut distinct = Distinct::new();
                    for ((k, x), acks) in window {
                        distinct.add(k, x, acks, keep);
                    }
                    distinct.take()
                })
            },
        )
    }
}
