//! `zip`: pair the elements of two streams in arrival order, bounded.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::graph::sync::{Gate, Lock};
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

/// The default number of unpaired elements an input of `zip` may hold, as in Streamz.
pub const DEFAULT_ZIP_BOUND: usize = 10;

struct Side<X> {
    queue: VecDeque<(X, Acks)>,
    ended: bool,
}

impl<X> Side<X> {
    fn new() -> Self {
        Side {
            queue: VecDeque::new(),
            ended: false,
        }
    }
}

struct State<A, B> {
    a: Side<A>,
    b: Side<B>,
    /// The node has ended: later elements (pushes that raced `close()`) are refused.
    done: bool,
}

struct Shared<A, B> {
    state: Lock<State<A, B>>,
    room: Gate,
}

pub(crate) struct Zip<A, B> {
    bound: usize,
    shared: Arc<Shared<A, B>>,
}

/// What happened to an arriving element.
enum Arrival<Y> {
    /// It completed a pair with the partner's oldest element.
    Paired(Y, Acks),
    /// It waits for a partner; `true` when its side is now over the bound.
    Queued(bool),
    /// The partner ended with nothing left to pair: it can never be paired.
    Dropped,
    /// The node has ended (a push that raced `close()`).
    Refused,
}

fn arrive<X, Y>(
    mine: &mut Side<X>,
    theirs: &mut Side<Y>,
    done: bool,
    x: X,
    acks: &Acks,
    bound: usize,
) -> (Arrival<Y>, Option<X>) {
    if done {
        return (Arrival::Refused, None);
    }
    if let Some((y, their_acks)) = theirs.queue.pop_front() {
        return (Arrival::Paired(y, their_acks), Some(x));
    }
    if theirs.ended {
        return (Arrival::Dropped, None);
    }
    mine.queue.push_back((x, acks.clone()));
    (Arrival::Queued(mine.queue.len() > bound), None)
}

/// What a batch did on its arrival (see [`arrive_batch`]).
struct BatchArrival<X, O> {
    /// The pairs it completed, in order.
    pairs: Vec<O>,
    /// Whether its side went over the bound.
    over: bool,
    /// The elements left to take one by one: from the first whose partner carries tokens.
    rest: Vec<X>,
}

/// Takes a batch without tokens in one lock: pairs what the partner holds, queues or drops
/// the rest as [`arrive`] would, element by element. It stops at the first partner carrying
/// tokens (the pair would need its own tokens), leaving that element and the ones after it in
/// `rest`.
fn arrive_batch<X, Y, O>(
    mine: &mut Side<X>,
    theirs: &mut Side<Y>,
    xs: Vec<X>,
    bound: usize,
    pair: impl Fn(X, Y) -> O,
) -> BatchArrival<X, O> {
    let mut pairs = Vec::with_capacity(xs.len().min(theirs.queue.len()));
    let mut over = false;
    let mut xs = xs.into_iter();
    while let Some(x) = xs.next() {
        match theirs.queue.front() {
            Some((_, acks)) if !acks.is_empty() => {
                let mut rest = vec![x];
                rest.extend(xs);
                return BatchArrival { pairs, over, rest };
            }
            Some(_) => {
                let (y, _) = theirs.queue.pop_front().expect("a partner in front");
                pairs.push(pair(x, y));
            }
            None if theirs.ended => {}
            None => {
                mine.queue.push_back((x, Acks::None));
                over |= mine.queue.len() > bound;
            }
        }
    }
    BatchArrival {
        pairs,
        over,
        rest: Vec::new(),
    }
}

impl<A: Item, B: Item> Zip<A, B> {
    /// Passes on what a batch did: its pairs as one batch, a wait if its side went over the
    /// bound, then the elements left to take one by one.
    fn after_batch<X>(
        &self,
        arrival: BatchArrival<X, (A, B)>,
        side_a: bool,
        out: &Outputs<(A, B)>,
        cx: &mut Cx,
        one: impl Fn(X, &mut Cx),
    ) {
        let BatchArrival { pairs, over, rest } = arrival;
        if !pairs.is_empty() {
            self.shared.room.wake();
            out.push_batch(pairs, cx);
        }
        if over {
            self.wait_for_room(cx, side_a);
        }
        for x in rest {
            one(x, cx);
        }
    }

    fn wait_for_room(&self, cx: &mut Cx, side_a: bool) {
        let shared = self.shared.clone();
        let bound = self.bound;
        cx.wait(async move {
            shared
                .room
                .until(|| {
                    let s = shared.state.lock();
                    if side_a {
                        s.a.queue.len() <= bound || s.b.ended
                    } else {
                        s.b.queue.len() <= bound || s.a.ended
                    }
                })
                .await;
            Ok(())
        });
    }
}

impl<A: Item, B: Item> Operator for Zip<A, B> {
    type Out = (A, B);

    fn on_end(&self, _out: &Outputs<(A, B)>, _cx: &mut Cx) {
        // Unpaired leftovers can never be paired: drop them, releasing their tokens.
        let (a, b) = {
            let mut s = self.shared.state.lock();
            s.done = true;
            (
                std::mem::take(&mut s.a.queue),
                std::mem::take(&mut s.b.queue),
            )
        };
        drop((a, b));
        self.shared.room.wake();
    }

    fn held(&self) -> usize {
        let s = self.shared.state.lock();
        s.a.queue.len() + s.b.queue.len()
    }
}

impl<A: Item, B: Item> Input<0> for Zip<A, B> {
    type In = A;

    fn on_input(&self, x: A, out: &Outputs<(A, B)>, cx: &mut Cx) {
        let (arrival, x) = {
            let mut s = self.shared.state.lock();
            let State { a, b, done } = &mut *s;
            arrive(a, b, *done, x, &cx.acks, self.bound)
        };
        match (arrival, x) {
            (Arrival::Paired(y, their_acks), Some(x)) => {
                self.shared.room.wake();
                let acks = cx.acks.merge(&their_acks);
                out.push_acked((x, y), acks, cx);
            }
            (Arrival::Queued(true), _) => self.wait_for_room(cx, true),
            (Arrival::Refused, _) => cx.reject_closed(),
            _ => {}
        }
    }

    /// A batch without tokens pairs and queues under one lock; a batch with tokens goes
    /// element by element, each pair carrying the tokens of its two elements.
    fn on_batch(&self, xs: Vec<A>, out: &Outputs<(A, B)>, cx: &mut Cx) {
        if !cx.acks.is_empty() {
            return xs
                .into_iter()
                .for_each(|x| <Self as Input<0>>::on_input(self, x, out, cx));
        }
        let arrival = {
            let mut s = self.shared.state.lock();
            let State { a, b, done } = &mut *s;
            if *done {
                drop(s);
                return cx.reject_closed();
            }
            arrive_batch(a, b, xs, self.bound, |x, y| (x, y))
        };
        self.after_batch(arrival, true, out, cx, |x, cx| {
            <Self as Input<0>>::on_input(self, x, out, cx)
        });
    }

    fn on_upstream_end(&self, _out: &Outputs<(A, B)>, _cx: &mut Cx) {
        self.shared.state.lock().a.ended = true;
        self.shared.room.wake();
    }
}

impl<A: Item, B: Item> Input<1> for Zip<A, B> {
    type In = B;

    fn on_input(&self, y: B, out: &Outputs<(A, B)>, cx: &mut Cx) {
        let (arrival, y) = {
            let mut s = self.shared.state.lock();
            let State { a, b, done } = &mut *s;
            arrive(b, a, *done, y, &cx.acks, self.bound)
        };
        match (arrival, y) {
            (Arrival::Paired(x, their_acks), Some(y)) => {
                self.shared.room.wake();
                let acks = their_acks.merge(&cx.acks);
                out.push_acked((x, y), acks, cx);
            }
            (Arrival::Queued(true), _) => self.wait_for_room(cx, false),
            (Arrival::Refused, _) => cx.reject_closed(),
            _ => {}
        }
    }

    /// As for the first input.
    fn on_batch(&self, ys: Vec<B>, out: &Outputs<(A, B)>, cx: &mut Cx) {
        if !cx.acks.is_empty() {
            return ys
                .into_iter()
                .for_each(|y| <Self as Input<1>>::on_input(self, y, out, cx));
        }
        let arrival = {
            let mut s = self.shared.state.lock();
            let State { a, b, done } = &mut *s;
            if *done {
                drop(s);
                return cx.reject_closed();
            }
            arrive_batch(b, a, ys, self.bound, |y, x| (x, y))
        };
        self.after_batch(arrival, false, out, cx, |y, cx| {
            <Self as Input<1>>::on_input(self, y, out, cx)
        });
    }

    fn on_upstream_end(&self, _out: &Outputs<(A, B)>, _cx: &mut Cx) {
        self.shared.state.lock().b.ended = true;
        self.shared.room.wake();
    }
}

impl<T: Item> Stream<T> {
    /// Pairs the elements of this stream and `other` in arrival order (FIFO per input): the
    /// n-th output is the n-th element of each. See [`zip_bounded`](Self::zip_bounded); this
    /// uses a bound of [`DEFAULT_ZIP_BOUND`].
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let pairs = a.zip(&b).sink_to_vec();
    /// a.emit(1).await?;
    /// b.emit('x').await?;
    /// a.emit(2).await?;
    /// b.emit('y').await?;
    /// assert_eq!(pairs.snapshot(), vec![(1, 'x'), (2, 'y')]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn zip<U: Item>(&self, other: &Stream<U>) -> Stream<(T, U)> {
        self.zip_bounded(other, DEFAULT_ZIP_BOUND)
    }

    /// Like [`zip`](Self::zip), holding at most `bound` unpaired elements per input: the
    /// `emit` that puts an input more than `bound` ahead of the other pends until the other
    /// catches up (the element itself is kept, so dropping that future loses nothing). When
    /// one input ends, elements that can no longer be paired are dropped and their tokens
    /// released. Tokens of an unpaired element are held until it is paired.
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
    /// let pairs = a.zip_bounded(&b, 1).sink_to_vec();
    /// assert!(a.emit(1).is_complete());
    /// let ahead = a.emit(2); // a is now 2 ahead: this pends
    /// assert!(!ahead.is_complete());
    /// b.emit("one").await?;  // pairs 1, making room
    /// ahead.await?;
    /// assert_eq!(pairs.snapshot(), vec![(1, "one")]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn zip_bounded<U: Item>(&self, other: &Stream<U>, bound: usize) -> Stream<(T, U)> {
        assert!(bound > 0, "zip: the bound must be at least 1");
        let node = self.then_node(
            "zip",
            Zip {
                bound,
                shared: Arc::new(Shared {
                    state: Lock::new(State {
                        a: Side::new(),
                        b: Side::new(),
                        done: false,
                    }),
                    room: Gate::new(),
                }),
            },
        );
        node.link_port::<1>(other);
        Stream::from_node(node)
    }
}
