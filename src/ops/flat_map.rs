//! `flat_map` and `flatten`: one element in, any number out.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct FlatMap<F, T, I> {
    f: F,
    _t: PhantomData<fn(T) -> I>,
}

impl<F, T, I> Operator for FlatMap<F, T, I>
where
    F: Fn(T) -> I + Send + Sync + 'static,
    T: Send + 'static,
    I: IntoIterator + 'static,
    I::Item: Item,
{
    type Out = I::Item;
}

impl<F, T, I> Input<0> for FlatMap<F, T, I>
where
    F: Fn(T) -> I + Send + Sync + 'static,
    T: Send + 'static,
    I: IntoIterator + 'static,
    I::Item: Item,
{
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<I::Item>, cx: &mut Cx) {
        let items = out.call(|| (self.f)(x));
        for y in items {
            out.push(y, cx);
        }
    }

    fn on_batch(&self, xs: Vec<T>, out: &Outputs<I::Item>, cx: &mut Cx) {
        let mut ys = Vec::with_capacity(xs.len());
        let expanded = catch_unwind(AssertUnwindSafe(|| {
            for x in xs {
                let items = out.call(|| (self.f)(x));
                ys.extend(items);
            }
        }));
        out.push_batch(ys, cx);
        if let Err(payload) = expanded {
            resume_unwind(payload);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Applies `f` and emits every item of what it returns, in order. Each output carries the
    /// input's acknowledgement token; an empty result drops the input.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let words = source.flat_map(|line: String| {
    ///     line.split_whitespace().map(str::to_string).collect::<Vec<_>>()
    /// }).sink_to_vec();
    /// source.emit("to be or".to_string()).await?;
    /// assert_eq!(words.snapshot(), vec!["to", "be", "or"]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn flat_map<I>(&self, f: impl Fn(T) -> I + Send + Sync + 'static) -> Stream<I::Item>
    where
        I: IntoIterator + 'static,
        I::Item: Item,
    {
        self.then("flat_map", FlatMap { f, _t: PhantomData })
    }

    /// Emits every item of each element (a `Vec`, an `Option`, any `IntoIterator`).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let flat = source.flatten().sink_to_vec();
    /// source.emit(vec![1, 2]).await?;
    /// source.emit(vec![]).await?;
    /// source.emit(vec![3]).await?;
    /// assert_eq!(flat.snapshot(), vec![1, 2, 3]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn flatten(&self) -> Stream<T::Item>
    where
        T: IntoIterator,
        T::Item: Item,
    {
        self.then(
            "flatten",
            FlatMap {
                f: |x: T| x,
                _t: PhantomData,
            },
        )
    }
}
