//! `accumulate`, `accumulate_from_first` and `accumulate_state`: a running fold (Streamz's
//! `accumulate`, a scan).
//!
//! Streamz's `accumulate(func)` has an optional `start`; Rust has no optional arguments, so the
//! two cases are two methods: `accumulate(start, f)` and `accumulate_from_first(f)`, which, as
//! Streamz does when no start is given, takes the first element as the state and emits it
//! unchanged.

use std::marker::PhantomData;

use crate::graph::sync::Lock;
use crate::graph::{Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct Accumulate<F, S, T, U> {
    f: F,
    state: Lock<S>,
    _t: PhantomData<fn(T) -> U>,
}

impl<F, S, T, U> Operator for Accumulate<F, S, T, U>
where
    F: Fn(S, T) -> (S, U) + Send + Sync + 'static,
    S: Clone + Send + 'static,
    T: Send + 'static,
    U: Item,
{
    type Out = U;
}

impl<F, S, T, U> Input<0> for Accumulate<F, S, T, U>
where
    F: Fn(S, T) -> (S, U) + Send + Sync + 'static,
    S: Clone + Send + 'static,
    T: Send + 'static,
    U: Item,
{
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<U>, cx: &mut Cx) {
        let y = {
            let mut state = self.state.lock();
            // The state is replaced only once `f` returned: a panic leaves it untouched.
            let (next, y) = out.call(|| (self.f)(state.clone(), x));
            *state = next;
            y
        };
        out.push(y, cx);
    }

    fn on_batch(&self, xs: Vec<T>, out: &Outputs<U>, cx: &mut Cx) {
        // One lock for the batch; the state moves on element by element, so a panic leaves it
        // as it was after the last element that did not panic.
        let ys = {
            let mut state = self.state.lock();
            out.call_each(xs, |x| {
                let (next, y) = (self.f)(state.clone(), x);
                *state = next;
                Some(y)
            })
        };
        out.push_batch_then(ys, cx);
    }
}

impl<T: Item> Stream<T> {
    /// A running fold: emits `f(acc, x)` for every element and keeps it as the next `acc`,
    /// starting from `start`. Without a start value (Streamz's default), see
    /// [`accumulate_from_first`](Self::accumulate_from_first).
    ///
    /// The state sits behind a lock taken only to compute the next value (never while pushing
    /// downstream). A panic in `f` leaves the state as it was. `f` must not emit into a graph
    /// that leads back to this node.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let totals = source.accumulate(0, |total, x: i32| total + x).sink_to_vec();
    /// for x in 1..=4 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(totals.snapshot(), vec![1, 3, 6, 10]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn accumulate<A: Item>(
        &self,
        start: A,
        f: impl Fn(A, T) -> A + Send + Sync + 'static,
    ) -> Stream<A> {
        self.then(
            "accumulate",
            Accumulate {
                f: move |acc, x| {
                    let next = f(acc, x);
                    (next.clone(), next)
                },
                state: Lock::new(start),
                _t: PhantomData,
            },
        )
    }

    /// A running fold seeded by the first element, as Streamz's `accumulate(func)` without
    /// `start`: the first element becomes the state and is emitted as it is; each later
    /// element `x` emits `f(acc, x)` and keeps it as the next `acc`. So a running total of
    /// `0, 1, 2, 3, 4` emits `0, 1, 3, 6, 10`, one output per element.
    ///
    /// The state sits behind a lock taken only to compute the next value (never while pushing
    /// downstream). A panic in `f` unwinds to the caller of `emit` and leaves the state as it
    /// was (if the panicking element was the second, the first is still the state). `f` must
    /// not emit into a graph that leads back to this node.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let totals = source.accumulate_from_first(|total, x: i32| total + x).sink_to_vec();
    /// let maxima = source.accumulate_from_first(|m: i32, x| m.max(x)).sink_to_vec();
    /// for x in [3, 1, 4, 1, 5] {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(totals.snapshot(), vec![3, 4, 8, 9, 14]);
    /// assert_eq!(maxima.snapshot(), vec![3, 3, 4, 4, 5]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    #[doc(alias = "scan")]
    #[doc(alias = "reduce")]
    pub fn accumulate_from_first(
        &self,
        f: impl Fn(T, T) -> T + Send + Sync + 'static,
    ) -> Stream<T> {
        self.then(
            "accumulate",
            Accumulate {
                f: move |acc: Option<T>, x: T| {
                    let next = match acc {
                        None => x,
                        Some(acc) => f(acc, x),
                    };
                    (Some(next.clone()), next)
                },
                state: Lock::new(None),
                _t: PhantomData,
            },
        )
    }

    /// A running fold whose function returns `(next_state, output)`: the state stays inside the
    /// node and only the output is emitted (Streamz's `returns_state=True`).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// // Emit each element with its running index.
    /// let indexed = source
    ///     .accumulate_state(0usize, |i, x: char| (i + 1, (i, x)))
    ///     .sink_to_vec();
    /// for c in ['a', 'b'] {
    ///     source.emit(c).await?;
    /// }
    /// assert_eq!(indexed.snapshot(), vec![(0, 'a'), (1, 'b')]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn accumulate_state<S, U>(
        &self,
        start: S,
        f: impl Fn(S, T) -> (S, U) + Send + Sync + 'static,
    ) -> Stream<U>
    where
        S: Clone + Send + 'static,
        U: Item,
    {
        self.then(
            "accumulate",
            Accumulate {
                f,
                state: Lock::new(start),
                _t: PhantomData,
            },
        )
    }
}
