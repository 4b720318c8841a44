//! `rate_limit`: no two elements pass closer together than a minimum spacing.
//!
//! Why a task and not a timestamp check on the caller's push: an element that arrives too early
//! must be held, not dropped, and released later when nobody is pushing. So the node accepts the
//! element into a [`Mailbox`] and a task on the ambient runtime releases elements one by one.
//!
//! Invariants:
//! - The first element passes at once; each later one passes no earlier than `d` after the
//!   previous one was released (tokio-stream's `throttle`), and no earlier than the previous
//!   one was accepted downstream.
//! - An element stays in the mailbox until its slot comes: the mailbox holds at most one element
//!   without making `emit` pend, so a producer awaiting `emit` runs at most one element ahead of
//!   the pace.
//! - Tokens travel with the element and are released once downstream has accepted it.

use std::time::Duration;

use tokio::time::Instant;

use super::queued::Admit;
use crate::graph::task::Mailbox;
use crate::{Item, Stream};

impl<T: Item> Stream<T> {
    /// Lets elements through no closer together than `d`: the first passes at once, each
    /// later one `d` after the previous one passed (or later, if downstream was slower). Order
    /// is kept and nothing is dropped.
    ///
    /// The node holds one element waiting for its slot without making `emit` pend; the `emit`
    /// of a second waiting element pends until the first has passed. So a producer awaiting
    /// `emit` is paced at one element per `d`. Dropping the `emit` future loses nothing.
    /// `close()` resolves once every held element has passed. Tokens are held until the
    /// element is accepted downstream. A panic downstream is reported on the next `emit` or by
    /// `close()`.
    ///
    /// Runs on the ambient tokio runtime and reads its clock.
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
    /// let source = Source::new();
    /// let seen = source
    ///     .rate_limit(Duration::from_millis(100))
    ///     .map(move |x: u32| (x, start.elapsed().as_millis()))
    ///     .sink_to_vec();
    /// for x in 1..=3 {
    ///     source.emit(x).await?;
    /// }
    /// source.close().await?;
    /// assert_eq!(seen.snapshot(), vec![(1, 0), (2, 100), (3, 200)]);
    /// # Ok(()) }
    /// ```
    pub fn rate_limit(&self, interval: Duration) -> Stream<T> {
        assert!(
            !interval.is_zero(),
            "rate_limit: the interval must be greater than zero"
        );
        self.queued(
            "rate_limit",
            Mailbox::new(1),
            1,
            Admit::Queue(|x| x),
            move |d| async move {
                let mut last: Option<Instant> = None;
                loop {
                    d.mailbox.ready().await;
                    if d.mailbox.is_drained() {
                        break;
                    }
                    if let Some(last) = last {
                        tokio::time::sleep_until(super::after(last, interval)).await;
                    }
                    let Some((x, acks)) = d.mailbox.recv().await else {
                        break;
                    };
                    last = Some(Instant::now());
                    d.forward(x, acks).await;
                }
            },
        )
    }
}
