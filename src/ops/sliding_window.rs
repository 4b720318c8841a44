//! `sliding_window`: the last `n` elements, emitted on every arrival.

use std::collections::VecDeque;

use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

pub(crate) struct SlidingWindow<T> {
    n: usize,
    partial: bool,
    window: Lock<VecDeque<(T, Acks)>>,
}

impl<T: Item> Operator for SlidingWindow<T> {
    type Out = Vec<T>;

    /// No window can be emitted any more: the elements go, and their tokens with them.
    fn on_end(&self, _out: &Outputs<Vec<T>>, _cx: &mut Cx) {
        let left = std::mem::take(&mut *self.window.lock());
        drop(left);
    }

    fn held(&self) -> usize {
        self.window.lock().len()
    }
}

impl<T: Item> Input<0> for SlidingWindow<T> {
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let (items, acks, _left) = {
            let mut w = self.window.lock();
            let left = if w.len() == self.n {
                w.pop_front()
            } else {
                None
            };
            w.push_back((x, cx.acks.clone()));
            if !self.partial && w.len() < self.n {
                return;
            }
            let items: Vec<T> = w.iter().map(|(x, _)| x.clone()).collect();
            (items, Acks::union(w.iter().map(|(_, a)| a)), left)
        };
        out.push_acked(items, acks, cx);
    }
}

impl<T: Item> Stream<T> {
    fn sliding(&self, n: usize, partial: bool) -> Stream<Vec<T>> {
        assert!(n > 0, "sliding_window: the window size must be at least 1");
        self.then(
            "sliding_window",
            SlidingWindow {
                n,
                partial,
                window: Lock::new(VecDeque::with_capacity(n)),
            },
        )
    }

    /// Emits the last `n` elements, oldest first, on every arrival once `n` have arrived.
    ///
    /// Each element's acknowledgement token is held until the element leaves the window.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let pairs = source.sliding_window(2).sink_to_vec();
    /// for x in 0..4 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(pairs.snapshot(), vec![vec![0, 1], vec![1, 2], vec![2, 3]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn sliding_window(&self, n: usize) -> Stream<Vec<T>> {
        self.sliding(n, false)
    }

    /// Like [`sliding_window`](Self::sliding_window), but also emits the partial windows
    /// before `n` elements have arrived (Streamz's default, `return_partial=True`).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let source = Source::new();
    /// let windows = source.sliding_window_partial(2).sink_to_vec();
    /// for x in 0..3 {
    ///     source.emit(x).await?;
    /// }
    /// assert_eq!(windows.snapshot(), vec![vec![0], vec![0, 1], vec![1, 2]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn sliding_window_partial(&self, n: usize) -> Stream<Vec<T>> {
        self.sliding(n, true)
    }
}
