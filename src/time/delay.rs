//! `delay`: each element is emitted a fixed time after it arrived, in order.
//!
//! Streamz's `delay` sleeps `d` after taking each element off its queue, so a burst is paced at
//! one element per `d` rather than delayed by `d`. Here each element is stamped with its
//! arrival time on the caller's push and released at `arrival + d`: a burst arrives together
//! and leaves together, `d` later.
//!
//! Invariants:
//! - Elements leave in arrival order, each no earlier than `d` after it arrived (later only
//!   when downstream was still busy with the previous one).
//! - The node holds at most `capacity` queued elements plus the one its task waits on before
//!   `emit` pends; dropping the `emit` future loses nothing.
//! - Tokens travel with the element and are released once downstream has accepted it.

use std::time::Duration;

use tokio::time::Instant;

use super::queued::Admit;
use crate::graph::task::Mailbox;
use crate::{Item, Stream};

/// How many delayed elements [`Stream::delay`] holds before `emit` pends.
///
/// ```
/// use std::time::Duration;
/// use brooklet::Source;
/// use brooklet::time::DEFAULT_DELAY_CAPACITY;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let source = Source::<u32>::new();
/// let _delayed = source.delay(Duration::from_millis(10));
/// for x in 0..DEFAULT_DELAY_CAPACITY as u32 {
///     assert!(source.emit(x).is_complete()); // accepted without pending
/// }
/// # }
/// ```
pub const DEFAULT_DELAY_CAPACITY: usize = 1024;

impl<T: Item> Stream<T> {
    /// Emits each element `d` after it arrived, in arrival order. Holds up to
    /// [`DEFAULT_DELAY_CAPACITY`] elements; see [`delay_bounded`](Self::delay_bounded).
    ///
    /// # Panics
    ///
    /// If `d` is zero, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::{sleep, Instant};
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let start = Instant::now();
    /// let source = Source::new();
    /// let seen = source
    ///     .delay(Duration::from_millis(50))
    ///     .map(move |x: char| (x, start.elapsed().as_millis()))
    ///     .sink_to_vec();
    /// source.emit('a').await?;
    /// source.emit('b').await?;
    /// sleep(Duration::from_millis(20)).await;
    /// source.emit('c').await?;
    /// source.close().await?;
    /// assert_eq!(seen.snapshot(), vec![('a', 50), ('b', 50), ('c', 70)]);
    /// # Ok(()) }
    /// ```
    pub fn delay(&self, d: Duration) -> Stream<T> {
        self.delay_bounded(d, DEFAULT_DELAY_CAPACITY)
    }

    /// Like [`delay`](Self::delay), holding at most `capacity` elements in its queue (plus the
    /// one whose time is coming) before `emit` pends. The pending `emit` resolves when the
    /// oldest held element leaves. `close()` resolves once every held element has been emitted,
    /// each at its time. Tokens are held until the element is accepted downstream; a panic
    /// downstream is reported on the next `emit` or by `close()`.
    ///
    /// # Panics
    ///
    /// If `d` is zero or `capacity` is 0, or when called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let seen = source.delay_bounded(Duration::from_secs(1), 1).sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// let third = source.emit(3); // 1 waits in the task, 2 in the queue: this pends
    /// tokio::task::yield_now().await;
    /// assert!(!third.is_complete());
    /// third.await?; // resolves when 1 leaves, a second later
    /// assert_eq!(seen.snapshot()[0], 1);
    /// source.close().await?;
    /// assert_eq!(seen.snapshot(), vec![1, 2, 3]);
    /// # Ok(()) }
    /// ```
    pub fn delay_bounded(&self, d: Duration, capacity: usize) -> Stream<T> {
        assert!(!d.is_zero(), "delay: the delay must be greater than zero");
        assert!(capacity > 0, "delay: the capacity must be at least 1");
        let stamp = |x| (Instant::now(), x);
        self.queued(
            "delay",
            Mailbox::new(capacity),
            capacity,
            Admit::Queue(stamp),
            move |q| async move {
                while let Some(((arrived, x), acks)) = q.mailbox.recv().await {
                    tokio::time::sleep_until(super::after(arrived, d)).await;
                    q.forward(x, acks).await;
                }
            },
        )
    }
}
