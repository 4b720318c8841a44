//! `filter`: keep the elements a predicate accepts.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct Filter<F, T> {
    f: F,
    _t: PhantomData<fn(T)>,
}

impl<F, T> Operator for Filter<F, T>
where
    F: Fn(&T) -> bool + Send + Sync + 'static,
    T: Item,
{
    type Out = T;
}

impl<F, T> Input<0> for Filter<F, T>
where
    F: Fn(&T) -> bool + Send + Sync + 'static,
    T: Item,
{
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<T>, cx: &mut Cx) {
        if out.call(|| (self.f)(&x)) {
            out.push(x, cx);
        }
    }

    fn on_batch(&self, mut xs: Vec<T>, out: &Outputs<T>, cx: &mut Cx) {
        // Filtered in place. On a panic, `retain` leaves the kept elements first, followed by
        // the one that panicked and those not yet looked at: keep only the first.
        let mut kept = 0;
        let filtered = catch_unwind(AssertUnwindSafe(|| {
            xs.retain(|x| {
                let keep = out.call(|| (self.f)(x));
                kept += keep as usize;
                keep
            })
        }));
        if filtered.is_err() {
            xs.truncate(kept);
        }
        out.push_batch(xs, cx);
        if let Err(payload) = filtered {
            resume_unwind(payload);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Passes on the elements for which `f` returns `true`; the others are dropped (their
    /// acknowledgement tokens are released).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let odd = source.filter(|x: &i32| x % 2 == 1).sink_to_vec();
    /// for x in 0..6 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(odd.snapshot(), vec![1, 3, 5]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> Stream<T> {
        self.then("filter", Filter { f, _t: PhantomData })
    }
}
