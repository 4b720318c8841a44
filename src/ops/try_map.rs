//! `try_map`: a fallible map whose errors go to a side output instead of the caller.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use std::sync::Arc;

use crate::graph::{Cx, Input, NodeDyn, Operator, Outputs, Side};
use crate::{Error, Item, Stream};

pub(crate) struct TryMap<F, T, U, E: Item> {
    f: F,
    errors: Side<E>,
    _t: PhantomData<fn(T) -> U>,
}

impl<F, T, U, E> Operator for TryMap<F, T, U, E>
where
    F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    T: Send + 'static,
    U: Item,
    E: Item,
{
    type Out = U;

    fn on_end(&self, _out: &Outputs<U>, cx: &mut Cx) {
        self.errors.finish(cx);
    }

    fn sides(&self) -> Vec<Arc<dyn NodeDyn>> {
        vec![self.errors.node()]
    }
}

impl<F, T, U, E> Input<0> for TryMap<F, T, U, E>
where
    F: Fn(T) -> Result<U, E> + Send + Sync + 'static,
    T: Send + 'static,
    U: Item,
    E: Item,
{
    type In = T;

    #[inline]
    fn on_input(&self, x: T, out: &Outputs<U>, cx: &mut Cx) {
        match out.call(|| (self.f)(x)) {
            Ok(y) => out.push(y, cx),
            Err(e) => {
                out.errors.inc_exact();
                if !cx.acks.is_empty() && !self.errors.is_connected() {
                    // The error counts as handled only if something takes it.
                    cx.acks.fail(&Error::Failed {
                        node: out.name(),
                        message: "the function returned an error, and nothing consumes the \
                                  node's `errors` output"
                            .to_string(),
                    });
                }
                self.errors.push(e, cx);
            }
        }
    }
}

/// Handle returned by [`Stream::try_map`]: the stream of successes (it dereferences to it),
/// and [`errors`](Fallible::errors), the stream of failures.
pub struct Fallible<U: Item, E: Item> {
    ok: Stream<U>,
    errors: Stream<E>,
}

impl<U: Item, E: Item> Clone for Fallible<U, E> {
    fn clone(&self) -> Self {
        Fallible {
            ok: self.ok.clone(),
            errors: self.errors.clone(),
        }
    }
}

impl<U: Item, E: Item> Deref for Fallible<U, E> {
    type Target = Stream<U>;

    fn deref(&self) -> &Stream<U> {
        &self.ok
    }
}

impl<U: Item, E: Item> fmt::Debug for Fallible<U, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallible")
            .field("ok", &self.ok)
            .field("errors", &self.errors)
            .finish()
    }
}

impl<U: Item, E: Item> Fallible<U, E> {
    /// The errors side output: every `Err` the function returned, in order. Connect a
    /// dead-letter sink here; with nothing connected, errors are counted (in the node's
    /// `errors` metric) and dropped.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let parsed = source.try_map(|s: &str| s.parse::<i32>().map_err(|e| (s, e.to_string())));
    /// let dead_letters = parsed.errors().sink_to_vec();
    /// source.emit("x").await?;
    /// assert_eq!(dead_letters.snapshot()[0].0, "x");
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn errors(&self) -> Stream<E> {
        self.errors.clone()
    }
}

impl<T: Item> Stream<T> {
    /// Applies a fallible `f`: `Ok` values are emitted, `Err` values go to the
    /// [`errors`](Fallible::errors) side output (a dead-letter stream) and never reach the caller
    /// of `emit`. The side output ends when this node ends. To keep the failing input, return
    /// it inside the error.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let numbers = source.try_map(|s: String| s.parse::<u32>().map_err(|_| s));
    /// let good = numbers.sink_to_vec();
    /// let bad = numbers.errors().sink_to_vec();
    /// for s in ["1", "two", "3"] {
    ///     source.emit(s.to_string()).await?;
    /// }
    /// assert_eq!(good.snapshot(), vec![1, 3]);
    /// assert_eq!(bad.snapshot(), vec!["two".to_string()]);
    /// assert_eq!(numbers.metrics().errors, 1);
    /// assert!(source.to_dot().contains("errors"));
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn try_map<U: Item, E: Item>(
        &self,
        f: impl Fn(T) -> Result<U, E> + Send + Sync + 'static,
    ) -> Fallible<U, E> {
        let errors = Side::new("errors");
        let error_stream = errors.stream();
        let node = self.then_node(
            "try_map",
            TryMap {
                f,
                errors,
                _t: PhantomData,
            },
        );
        node.op.errors.set_owner(node.clone());
        Fallible {
            ok: Stream::from_node(node),
            errors: error_stream,
        }
    }
}
