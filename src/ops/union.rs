//! `union`: merge streams of the same type.

use std::marker::PhantomData;

use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

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
    /// The union ends when both inputs have ended.
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
    pub fn union(&self, other: &Stream<T>) -> Stream<T> {
        self.union_all([other])
    }

    /// Merges this stream with every stream in `others`.
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
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn union_all<'a>(&self, others: impl IntoIterator<Item = &'a Stream<T>>) -> Stream<T> {
        let node = self.then_node("union", Union(PhantomData));
        for other in others {
            other.link(node.clone(), node.clone());
        }
        Stream::from_node(node)
    }
}
