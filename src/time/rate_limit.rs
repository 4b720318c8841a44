//! `rate_limit`: no two elements pass closer together than a minimum spacing.
//!
//! Why a task and not a timestamp check on the caller's push: an element that arrives too early
//! must be held, not dropped, and released later when nobody is pushing. So the node accepts the
//! element into a [`Mailbox`] and a task on the ambient runtime releases elements one by one.
//!
//! Why `emit` waits for the element to pass (as Streamz's `rate_limit`, whose `update` sleeps
//! and then yields the downstream emission): a producer that awaits `emit` must see the pace.
//! If `emit` resolved when the element was merely queued, the producer would run one element
//! ahead of the pace, and a `Source::run` would pull its next input before the previous one
//! had gone through.
//!
//! Invariants:
//! - The first element passes at once; each later one passes no earlier than `d` after the
//!   previous one was released (tokio-stream's `throttle`), and no earlier than the previous
//!   one was accepted downstream.
//! - The `emit` that delivered an element resolves once that element has passed and been
//!   accepted downstream; if the element is lost instead (the node's task stopped), it resolves
//!   to an error. The mailbox holds one element without making `emit` pend on room, so a
//!   producer that drops its `emit` futures is still bounded.
//! - Tokens travel with the element and are released once downstream has accepted it.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::queued::Admit;
use crate::graph::task::Mailbox;
use crate::{Error, Item, Stream};

impl<T: Item> Stream<T> {
    /// Lets elements through no closer together than `d`: the first passes at once, each
    /// later one `d` after the previous one passed (or later, if downstream was slower). Order
    /// is kept and nothing is dropped.
    ///
    /// The `emit` that delivered an element resolves once the element has passed the node and
    /// been accepted downstream, as in Streamz: a producer awaiting `emit` runs exactly at the
    /// pace, and `n` awaited emits take at least `(n - 1) * d`. Dropping the `emit` future loses
    /// nothing; a producer that drops them is held back once one element waits for its slot.
    /// `close()` resolves once every held element has passed. Tokens are held until the element
    /// is accepted downstream. A panic downstream is reported on the next `emit` or by
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
    ///     source.emit(x).await?; // resolves once x has passed
    /// }
    /// assert_eq!(seen.snapshot(), vec![(1, 0), (2, 100), (3, 200)]);
    /// assert_eq!(start.elapsed().as_millis(), 200);
    /// source.close().await?;
    /// # Ok(()) }
    /// ```
    pub fn rate_limit(&self, interval: Duration) -> Stream<T> {
        assert!(
            !interval.is_zero(),
            "rate_limit: the interval must be greater than zero"
        );
        let admit = Admit::Hook(Box::new(|x, mailbox: &_, out: &_, cx: &mut _| {
            let (passed, done) = oneshot::channel::<()>();
            let node = out.name();
            Mailbox::put(mailbox, (x, passed), cx);
            // A put refused by a closed node drops `passed` and fails the push with `Closed`
            // already; the error below is then not the one reported.
            cx.wait(async move {
                done.await.map_err(|_| Error::Failed {
                    node,
                    message: "the element was lost before it passed: the node's task stopped"
                        .to_string(),
                })
            });
        }));
        self.queued(
            "rate_limit",
            Mailbox::new(1),
            1,
            admit,
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
                    let Some(((x, passed), acks)) = d.mailbox.recv().await else {
                        break;
                    };
                    last = Some(Instant::now());
                    d.forward(x, acks).await;
                    let _ = passed.send(());
                }
            },
        )
    }
}
