//! `latest`: while downstream is busy, keep only the newest element.
//!
//! Why: a consumer slower than its producer (a UI refresh, a model that scores the current
//! state) wants the freshest value, not a backlog. The node never makes `emit` pend; it replaces
//! whatever waits with the new element, and its task pushes the waiting element downstream as
//! soon as the previous push has been accepted.
//!
//! Invariants:
//! - At most one element waits; the element being pushed downstream is the other one held.
//! - The final element is never dropped: `close()` pushes what waits before resolving.
//! - The tokens of a replaced element are released when it is replaced; the others once their
//!   element has been accepted downstream.

use super::queued::Admit;
use crate::graph::task::Mailbox;
use crate::{Item, Stream};

impl<T: Item> Stream<T> {
    /// Passes elements on as fast as downstream accepts them, dropping the stale ones: while
    /// downstream is still busy with one element, only the newest of those that arrive
    /// meanwhile is kept. `emit` never pends. The last element is never dropped, and `close()`
    /// resolves once it has been accepted. The tokens of a dropped element are released when
    /// it is dropped. A panic downstream is reported on the next `emit` or by `close()`.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::Source;
    /// use tokio::time::sleep;
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), brooklet::Error> {
    /// let source = Source::new();
    /// let (seen, _sink) = {
    ///     let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    ///     let s = seen.clone();
    ///     let sink = source.latest().sink_async(move |x: u32| {
    ///         let s = s.clone();
    ///         async move {
    ///             sleep(Duration::from_millis(50)).await; // a slow consumer
    ///             s.lock().unwrap().push(x);
    ///         }
    ///     });
    ///     (seen, sink)
    /// };
    /// source.emit(1).await?;
    /// sleep(Duration::from_millis(10)).await;
    /// source.emit(2).await?; // waits while 1 is being written...
    /// source.emit(3).await?; // ...and is replaced by 3
    /// source.close().await?;
    /// assert_eq!(*seen.lock().unwrap(), vec![1, 3]);
    /// # Ok(()) }
    /// ```
    pub fn latest(&self) -> Stream<T> {
        self.queued(
            "latest",
            Mailbox::new(1),
            1,
            Admit::Replace(|x| x),
            |d| async move {
                while let Some((x, acks)) = d.mailbox.recv().await {
                    d.forward(x, acks).await;
                }
            },
        )
    }
}
