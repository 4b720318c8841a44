//! `map`: apply a function to every element.

use std::marker::PhantomData;

use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct Map<F, T, U> {
    f: F,
    _t: PhantomData<fn(T) -> U>,
}

impl<F, T, U> Operator for Map<F, T, U>
where
    F: Fn(T) -> U + Send + Sync + 'static,
    T: Send + 'static,
    U: Item,
{
    type Out = U;
    const PASSES_EACH: bool = true;
}

impl<F, T, U> Input<0> for Map<F, T, U>
where
    F: Fn(T) -> U + Send + Sync + 'static,
    T: Send + 'static,
    U: Item,
{
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<U>, cx: &mut Cx) {
        let y = out.call(|| (self.f)(x));
        out.pass(y, cx);
    }

    fn on_batch(&self, xs: Vec<T>, out: &Outputs<U>, cx: &mut Cx) {
        let n = xs.len();
        let (ys, panic) = out.call_each(xs, |x| Some((self.f)(x)));
        if panic.is_some() {
            // The panicking element counts as an error; the ones after it were dropped.
            out.skipped.add(n - ys.len() - 1);
        }
        out.pass_batch(ys, cx);
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Applies `f` to every element.
    ///
    /// Synchronous and stateless: costs a dynamic call and takes no lock. A panic in `f`
    /// unwinds into the caller of `emit`. A batch
    /// ([`emit_batch`](crate::Source::emit_batch)) is mapped in one call, into the batch's
    /// own memory when `U` has the size and alignment of `T`.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let lengths = source.map(|s: &str| s.len()).sink_to_vec();
    /// source.emit("four").await?;
    /// source.emit("to").await?;
    /// assert_eq!(lengths.snapshot(), vec![4, 2]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn map<U: Item>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Stream<U> {
        self.then("map", Map { f, _t: PhantomData })
    }
}
