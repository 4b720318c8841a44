//! `union`: merge streams of the same type.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::graph::{Cx, Input, Operator, Outputs, SamePort};
use crate::{Item, Join, Stream};

pub(crate) struct Union<T>(PhantomData<fn(T)>);

impl<T: Item> Operator for Union<T> {
    type Out = T;
    const PASSES_EACH: bool = true;
}

impl<T: Item> Input<0> for Union<T> {
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<T>, cx: &mut Cx) {
        out.pass(x, cx);
    }

    #[inline]
    fn on_batch(&self, xs: Vec<T>, out: &Outputs<T>, cx: &mut Cx) {
        out.pass_batch(xs, cx);
    }
}

impl<T: Item> Stream<T> {
    /// Merges this stream and `other`: every element of either is passed on as it arrives.
    /// The union ends when every input has ended.
    ///
    /// The result is a [`Join`]: other streams can become inputs with
    /// [`connect`](Stream::connect), and any input can leave with
    /// [`disconnect`](Stream::disconnect).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let both = a.union(&b).sink_to_vec();
    /// a.emit(1).await?;
    /// b.emit(2).await?;
    /// a.emit(3).await?;
    /// assert_eq!(both.snapshot(), vec![1, 2, 3]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn union(&self, other: &Stream<T>) -> Join<T, T> {
        self.union_all([other])
    }

    /// Merges this stream with every stream in `others` (see [`union`](Stream::union)).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let sources: Vec<Source<u8>> = (0..3).map(|_| Source::new()).collect();
    /// let all = sources[0].union_all(sources[1..].iter().map(|s| &**s)).sink_to_vec();
    /// for (i, s) in sources.iter().enumerate() {
    ///     s.emit(i as u8).await?;
    /// }
    /// assert_eq!(all.snapshot(), vec![0, 1, 2]);
    ///
    /// // Inputs come and go while it runs.
    /// let merged = sources[0].union_all(sources[1..].iter().map(|s| &**s));
    /// let seen = merged.sink_to_vec();
    /// let extra = Source::new();
    /// extra.connect(&merged);
    /// sources[1].disconnect(&merged);
    /// sources[1].emit(10).await?; // no longer an input
    /// extra.emit(11).await?;
    /// assert_eq!(seen.snapshot(), vec![11]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn union_all<'a>(&self, others: impl IntoIterator<Item = &'a Stream<T>>) -> Join<T, T> {
        let node = self.then_node("union", Union(PhantomData));
        for other in others {
            other.link(node.clone(), node.clone());
        }
        Join::new(Stream::from_node(node.clone()), Arc::new(SamePort(node)))
    }
}
