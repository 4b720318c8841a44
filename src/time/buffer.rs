//! `buffer`: a bounded queue that decouples upstream from downstream.

use super::queued::Admit;
use crate::graph::task::Mailbox;
use crate::{Item, Stream};

impl<T: Item> Stream<T> {
    /// A bounded queue drained by a task on the ambient tokio runtime: `emit` resolves at once
    /// while the queue holds at most `capacity` elements, and pends while it holds more; a
    /// pending `emit` resolves once the queue has drained to `capacity - capacity / 8` (so
    /// producer and task trade batches, not single elements). The
    /// task pushes one element at a time downstream and awaits each emission, so a slow
    /// consumer slows the producer down through the buffer.
    ///
    /// A panic downstream of the buffer is reported on the next `emit` (or by `close()`), and
    /// the elements after it keep flowing. `close()` resolves once the queue has drained.
    /// Tokens are held until the element has been accepted downstream.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0, or when called outside a tokio runtime.
    ///
    /// ```
    /// use brooklet::Source;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let seen = source.buffer(2).map(|x: u32| x * 10).sink_to_vec();
    /// for x in 1..=3 {
    ///     source.emit(x).await?; // the third emit waits for the task to make room
    /// }
    /// source.close().await?;
    /// assert_eq!(seen.snapshot(), vec![10, 20, 30]);
    /// # Ok(()) }
    /// ```
    pub fn buffer(&self, capacity: usize) -> Stream<T> {
        assert!(capacity > 0, "buffer: the capacity must be at least 1");
        // A producer held back by a full buffer resumes once an eighth of it has drained (at once
        // for capacities under 8): producer and task then trade batches rather than single
        // elements, which is most of what a hop costs. The bound is unchanged.
        let mailbox = Mailbox::with_low_water(capacity, capacity - capacity / 8);
        self.queued(
            "buffer",
            mailbox,
            capacity,
            Admit::Queue(|x| x),
            |d| async move {
                // The task takes everything queued at once and publishes the room it makes as it
                // goes (see `task::Batch`): one lock per batch rather than per element.
                let mut batch = d.mailbox.batch();
                loop {
                    let Some((x, acks)) = batch.pop() else {
                        if batch.refill().await {
                            continue;
                        }
                        break;
                    };
                    if let Some(emit) = d.forward_start(x, acks) {
                        if !emit.is_complete() {
                            batch.publish();
                        }
                        d.forward_finish(emit).await;
                    }
                }
            },
        )
    }
}
