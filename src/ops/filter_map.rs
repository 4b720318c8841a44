//! `filter_map`: transform and filter in one step.

use std::marker::PhantomData;

use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct FilterMap<F, T, U> {
    f: F,
    _t: PhantomData<fn(T) -> U>,
}

impl<F, T, U> Operator for FilterMap<F, T, U>
where
    F: Fn(T) -> Option<U> + Send + Sync + 'static,
    T: Send + 'static,
    U: Item,
{
    type Out = U;
}

impl<F, T, U> Input<0> for FilterMap<F, T, U>
where
    F: Fn(T) -> Option<U> + Send + Sync + 'static,
    T: Send + 'static,
    U: Item,
{
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<U>, cx: &mut Cx) {
        if let Some(y) = out.call(|| (self.f)(x)) {
            out.push(y, cx);
        }
    }

    fn on_batch(&self, xs: Vec<T>, out: &Outputs<U>, cx: &mut Cx) {
        let ys = out.call_each(xs, &self.f);
        out.push_batch_then(ys, cx);
    }
}

impl<T: Item> Stream<T> {
    /// Applies `f` and passes on the `Some` results; `None` drops the element.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let numbers = source.filter_map(|s: &str| s.parse::<i32>().ok()).sink_to_vec();
    /// for s in ["1", "x", "3"] {
    ///     source.emit(s).await?;
    /// }
    /// assert_eq!(numbers.snapshot(), vec![1, 3]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn filter_map<U: Item>(
        &self,
        f: impl Fn(T) -> Option<U> + Send + Sync + 'static,
    ) -> Stream<U> {
        self.then("filter_map", FilterMap { f, _t: PhantomData })
    }
}
