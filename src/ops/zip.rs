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
}

fn arrive<X, Y>(
    mine: &mut Side<X>,
    theirs: &mut Side<Y>,
    x: X,
    acks: &Acks,
    bound: usize,
) -> (Arrival<Y>, Option<X>) {
    if let Some((y, their_acks)) = theirs.queue.pop_front() {
        return (Arrival::Paired(y, their_acks), Some(x));
    }
    if theirs.ended {
        return (Arrival::Dropped, None);
    }
    mine.queue.push_back((x, acks.clone()));
    (Arrival::Queued(mine.queue.len() > bound), None)
}

impl<A: Item, B: Item> Zip<A, B> {
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
            let State { a, b } = &mut *s;
            arrive(a, b, x, &cx.acks, self.bound)
        };
        match (arrival, x) {
            (Arrival::Paired(y, their_acks), Some(x)) => {
                self.shared.room.wake();
                let acks = cx.acks.merge(&their_acks);
                out.push_acked((x, y), acks, cx);
            }
            (Arrival::Queued(true), _) => self.wait_for_room(cx, true),
            _ => {}
        }
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
            let State { a, b } = &mut *s;
            arrive(b, a, y, &cx.acks, self.bound)
        };
        match (arrival, y) {
            (Arrival::Paired(x, their_acks), Some(y)) => {
                self.shared.room.wake();
                let acks = their_acks.merge(&cx.acks);
                out.push_acked((x, y), acks, cx);
            }
            (Arrival::Queued(true), _) => self.wait_for_room(cx, false),
            _ => {}
        }
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
                    }),
                    room: Gate::new(),
                }),
            },
        );
        node.link_port::<1>(other);
        Stream::from_node(node)
    }
}
