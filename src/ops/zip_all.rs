//! `zip_all`: rows of one element from each input, in arrival order, with inputs that can
//! come and go while the graph runs.
//!
//! Invariants:
//! - A row takes the oldest element of every current input, in the order the inputs were
//!   added; it carries the tokens of all of them.
//! - An input is never more than `bound` elements ahead: the push that goes past it waits
//!   until a row is taken, an input that could pair with it has ended with nothing left, or
//!   its input is cut.
//! - Cutting an input drops what it holds (releasing the tokens) and takes every row the
//!   remaining inputs can now make, so a cut never wedges the others.
//! - Once some input has ended with nothing queued, no row can be made: elements arriving
//!   after that are dropped and their tokens released.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::graph::sync::{Gate, Lock};
use crate::graph::{Acks, Cx, Inputs, Operator, Outputs};
use crate::ops::zip::DEFAULT_ZIP_BOUND;
use crate::{Item, Join, Stream};

struct In<T> {
    id: u64,
    upstream: usize,
    /// Keeps the input's port alive (a feedback edge holds it only weakly).
    _port: Arc<dyn Any + Send + Sync>,
    queue: VecDeque<(T, Acks)>,
    ended: bool,
}

struct Shared<T> {
    inputs: Lock<Vec<In<T>>>,
    room: Gate,
}

pub(crate) struct ZipAll<T> {
    bound: usize,
    shared: Arc<Shared<T>>,
}

/// Whether an input other than `id` has ended with nothing queued: no row can be made.
fn starved<T>(inputs: &[In<T>], id: u64) -> bool {
    inputs
        .iter()
        .any(|i| i.id != id && i.ended && i.queue.is_empty())
}

/// Takes every row the inputs can make now.
fn rows<T>(inputs: &mut [In<T>]) -> Vec<(Vec<T>, Acks)> {
    let mut out = Vec::new();
    while !inputs.is_empty() && inputs.iter().all(|i| !i.queue.is_empty()) {
        let taken: Vec<(T, Acks)> = inputs
            .iter_mut()
            .filter_map(|i| i.queue.pop_front())
            .collect();
        let acks = Acks::union(taken.iter().map(|(_, a)| a));
        out.push((taken.into_iter().map(|(x, _)| x).collect(), acks));
    }
    out
}

impl<T: Item> ZipAll<T> {
    fn wait_for_room(&self, cx: &mut Cx, id: u64) {
        let shared = self.shared.clone();
        let bound = self.bound;
        cx.wait(async move {
            shared
                .room
                .until(|| {
                    let inputs = shared.inputs.lock();
                    match inputs.iter().find(|i| i.id == id) {
                        None => true, // cut
                        Some(me) => me.queue.len() <= bound || starved(&inputs, id),
                    }
                })
                .await;
            Ok(())
        });
    }
}

impl<T: Item> Operator for ZipAll<T> {
    type Out = Vec<T>;

    fn on_end(&self, _out: &Outputs<Vec<T>>, _cx: &mut Cx) {
        // What is still unpaired can never be: drop it, releasing its tokens. Every input
        // counts as ended, feedback ones included (their ends are not delivered).
        let left: Vec<_> = self
            .shared
            .inputs
            .lock()
            .iter_mut()
            .map(|i| {
                i.ended = true;
                std::mem::take(&mut i.queue)
            })
            .collect();
        drop(left);
        self.shared.room.wake();
    }

    fn held(&self) -> usize {
        self.shared
            .inputs
            .lock()
            .iter()
            .map(|i| i.queue.len())
            .sum()
    }
}

impl<T: Item> Inputs for ZipAll<T> {
    type In = T;

    fn added(&self, id: u64, upstream: usize, port: Arc<dyn Any + Send + Sync>) {
        self.shared.inputs.lock().push(In {
            id,
            upstream,
            _port: port,
            queue: VecDeque::new(),
            ended: false,
        });
    }

    fn on_input_from(&self, id: u64, x: T, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let (made, over) = {
            let mut inputs = self.shared.inputs.lock();
            let Some(at) = inputs.iter().position(|i| i.id == id) else {
                return; // cut while the push was under way
            };
            if inputs[at].ended {
                // After its upstream's end: a push that raced `close()`.
                drop(inputs);
                return cx.reject_closed();
            }
            if starved(&inputs, id) {
                return; // can never be paired: dropped, its tokens released
            }
            let me = &mut inputs[at];
            me.queue.push_back((x, cx.acks.clone()));
            let over = me.queue.len() > self.bound;
            (rows(&mut inputs), over)
        };
        if !made.is_empty() {
            self.shared.room.wake();
        }
        out.push_each_acked(made, cx);
        if over {
            self.wait_for_room(cx, id);
        }
    }

    fn ended(&self, id: u64, _out: &Outputs<Vec<T>>, _cx: &mut Cx) {
        if let Some(me) = self.shared.inputs.lock().iter_mut().find(|i| i.id == id) {
            me.ended = true;
        }
        self.shared.room.wake();
    }

    fn cut(&self, id: u64, out: &Outputs<Vec<T>>, cx: &mut Cx) {
        let (gone, made) = {
            let mut inputs = self.shared.inputs.lock();
            let gone = inputs
                .iter()
                .position(|i| i.id == id)
                .map(|at| inputs.remove(at));
            (gone, rows(&mut inputs))
        };
        drop(gone);
        self.shared.room.wake();
        out.push_each_acked(made, cx);
    }

    fn input_of(&self, upstream: *const ()) -> Option<u64> {
        self.shared
            .inputs
            .lock()
            .iter()
            .find(|i| i.upstream == upstream as usize)
            .map(|i| i.id)
    }
}

impl<T: Item> Stream<T> {
    /// Rows of one element from each input: this stream and every stream in `others`, in
    /// that order, the n-th row holding the n-th element of each (Streamz's `zip` over any
    /// number of streams of one type). Uses a bound of [`DEFAULT_ZIP_BOUND`]; see
    /// [`zip_all_bounded`](Self::zip_all_bounded).
    ///
    /// The result is a [`Join`]: a stream [`connect`](Stream::connect)ed to it becomes one more
    /// input (its elements go last in each row, and rows wait for it too), and an input that
    /// is [`disconnect`](Stream::disconnect)ed leaves: what it held is dropped and the rows
    /// the others can now make are emitted at once. For two streams of different types, use
    /// [`zip`](Self::zip).
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let rows = a.zip_all([&*b]);
    /// let seen = rows.sink_to_vec();
    /// a.emit(1).await?;
    /// a.emit(2).await?;
    /// b.emit(10).await?;
    /// assert_eq!(seen.snapshot(), vec![vec![1, 10]]);
    /// // b leaves while a holds 2: a alone makes rows now.
    /// b.disconnect(&rows);
    /// assert_eq!(seen.snapshot(), vec![vec![1, 10], vec![2]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn zip_all<'a>(&self, others: impl IntoIterator<Item = &'a Stream<T>>) -> Join<T, Vec<T>> {
        self.zip_all_bounded(others, DEFAULT_ZIP_BOUND)
    }

    /// Like [`zip_all`](Self::zip_all), holding at most `bound` unpaired elements per input:
    /// the `emit` that puts an input more than `bound` ahead pends until a row is taken (the
    /// element itself is kept, so dropping that future loses nothing). When an input ends
    /// with nothing queued, elements that can no longer make a row are dropped and their
    /// tokens released. The tokens of a queued element are held until its row is emitted.
    ///
    /// # Panics
    ///
    /// If `bound` is 0.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let rows = a.zip_all_bounded([&*b], 1);
    /// let seen = rows.sink_to_vec();
    /// assert!(a.emit(1).is_complete());
    /// let ahead = a.emit(2); // two ahead of b: pends
    /// assert!(!ahead.is_complete());
    /// b.emit(10).await?;
    /// ahead.await?;
    /// assert_eq!(seen.snapshot(), vec![vec![1, 10]]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn zip_all_bounded<'a>(
        &self,
        others: impl IntoIterator<Item = &'a Stream<T>>,
        bound: usize,
    ) -> Join<T, Vec<T>> {
        assert!(bound > 0, "zip_all: the bound must be at least 1");
        let op = ZipAll {
            bound,
            shared: Arc::new(Shared {
                inputs: Lock::new(Vec::new()),
                room: Gate::new(),
            }),
        };
        self.join_per_input("zip_all", op, others)
    }
}
