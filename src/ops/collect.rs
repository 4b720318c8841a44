//! `collect`: hold elements until `flush`.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Input, Node, Operator, Outputs};
use crate::ops::partition::unzip_batch;
use crate::{Emit, Item, Stream};

pub(crate) struct CollectOp<T> {
    cache: Lock<Vec<(T, Acks)>>,
    /// The node has ended: later elements (pushes that raced `close()`) are refused.
    ended: std::sync::atomic::AtomicBool,
}

impl<T: Item> CollectOp<T> {
    fn flush_into(&self, out: &Outputs<Vec<T>>, cx: &mut Cx, even_empty: bool) {
        let batch = std::mem::take(&mut *self.cache.lock());
        if batch.is_empty() && !even_empty {
            return;
        }
        let (items, acks) = unzip_batch(batch);
        out.push_acked(items, acks, cx);
    }
}

impl<T: Item> Operator for CollectOp<T> {
    type Out = Vec<T>;

    fn on_end(&self, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        {
            let _cache = self.cache.lock();
            self.ended.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        self.flush_into(out, cx, false);
    }

    fn held(&self) -> usize {
        self.cache.lock().len()
    }
}

impl<T: Item> Input<0> for CollectOp<T> {
    type In = T;

    fn on_input(&self, x: T, _out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let mut cache = self.cache.lock();
        // Read under the lock that `on_end` sets it under: a push either lands before the
        // final flush or is refused.
        if self.ended.load(std::sync::atomic::Ordering::Relaxed) {
            drop(cache);
            return cx.reject_closed();
        }
        cache.push((x, cx.acks.clone()));
    }
}

/// Handle returned by [`Stream::collect`]: a stream of batches, emitted on
/// [`flush`](Collect::flush). Dereferences to that [`Stream`].
pub struct Collect<T: Item> {
    node: Arc<Node<CollectOp<T>>>,
    stream: Stream<Vec<T>>,
}

impl<T: Item> Clone for Collect<T> {
    fn clone(&self) -> Self {
        Collect {
            node: self.node.clone(),
            stream: self.stream.clone(),
        }
    }
}

impl<T: Item> Deref for Collect<T> {
    type Target = Stream<Vec<T>>;

    fn deref(&self) -> &Stream<Vec<T>> {
        &self.stream
    }
}

impl<T: Item> fmt::Debug for Collect<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collect")
            .field("held", &self.node.op.held())
            .finish()
    }
}

impl<T: Item> Collect<T> {
    /// Emits everything collected so far as one batch (possibly empty, as in Streamz) and
    /// starts a new one. The returned future resolves when downstream accepted the batch.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let collected = source.collect();
    /// let batches = collected.sink_to_vec();
    /// source.emit(1).await?;
    /// source.emit(2).await?;
    /// collected.flush().await?;
    /// collected.flush().await?;
    /// assert_eq!(batches.snapshot(), vec![vec![1, 2], vec![]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn flush(&self) -> Emit {
        let mut cx = Cx::new();
        self.node.op.flush_into(&self.node.out, &mut cx, true);
        cx.into_emit()
    }
}

impl<T: Item> Stream<T> {
    /// Holds every element until [`Collect::flush`] is called, then emits them as one `Vec`.
    /// What is held when the stream ends is emitted then. Tokens are held until the batch is
    /// emitted.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let collected = source.collect();
    /// let batches = collected.sink_to_vec();
    /// source.emit('a').await?;
    /// source.close().await?;
    /// assert_eq!(batches.snapshot(), vec![vec!['a']]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn collect(&self) -> Collect<T> {
        let node = self.then_node(
            "collect",
            CollectOp {
                cache: Lock::new(Vec::new()),
                ended: std::sync::atomic::AtomicBool::new(false),
            },
        );
        let stream = Stream::from_node(node.clone());
        Collect { node, stream }
    }
}
