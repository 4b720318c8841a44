//! `combine_latest`: the latest value of each of two streams, whenever one changes.

use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::{Item, Stream};

/// Which input's arrivals make [`Stream::combine_latest_on`] emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmitOn {
    /// Either input (the default of [`Stream::combine_latest`]).
    #[default]
    Either,
    /// Only the stream the method was called on (the left of the pair).
    Left,
    /// Only the `other` stream (the right of the pair).
    Right,
}

/// The latest value of each input, with its tokens.
struct Latest<A, B> {
    a: Option<(A, Acks)>,
    b: Option<(B, Acks)>,
    /// The node has ended: later elements (pushes that raced `close()`) are refused.
    ended: bool,
}

pub(crate) struct CombineLatest<A, B> {
    emit_on: EmitOn,
    latest: Lock<Latest<A, B>>,
}

impl<A: Item, B: Item> Operator for CombineLatest<A, B> {
    type Out = (A, B);

    /// No pair can be emitted any more: the latest values go, and their tokens with them.
    fn on_end(&self, _out: &Outputs<(A, B)>, _cx: &mut Cx) {
        let left = {
            let mut l = self.latest.lock();
            l.ended = true;
            (l.a.take(), l.b.take())
        };
        drop(left);
    }

    fn held(&self) -> usize {
        let l = self.latest.lock();
        l.a.is_some() as usize + l.b.is_some() as usize
    }
}

impl<A: Item, B: Item> Input<0> for CombineLatest<A, B> {
    type In = A;

    fn on_input(&self, x: A, out: &Outputs<(A, B)>, cx: &mut Cx) {
        let emits = self.emit_on != EmitOn::Right;
        let (pair, _replaced) = {
            let mut l = self.latest.lock();
            if l.ended {
                drop(l);
                return cx.reject_closed();
            }
            let replaced = l.a.replace((x.clone(), cx.acks.clone()));
            let pair = match (&l.b, emits) {
                (Some((y, their)), true) => Some(((x, y.clone()), cx.acks.merge(their))),
                _ => None,
            };
            (pair, replaced)
        };
        if let Some((pair, acks)) = pair {
            out.push_acked(pair, acks, cx);
        }
    }
}

impl<A: Item, B: Item> Input<1> for CombineLatest<A, B> {
    type In = B;

    fn on_input(&self, y: B, out: &Outputs<(A, B)>, cx: &mut Cx) {
        let emits = self.emit_on != EmitOn::Left;
        let (pair, _replaced) = {
            let mut l = self.latest.lock();
            if l.ended {
                drop(l);
                return cx.reject_closed();
            }
            let replaced = l.b.replace((y.clone(), cx.acks.clone()));
            let pair = match (&l.a, emits) {
                (Some((x, their)), true) => Some(((x.clone(), y), their.merge(&cx.acks))),
                _ => None,
            };
            (pair, replaced)
        };
        if let Some((pair, acks)) = pair {
            out.push_acked(pair, acks, cx);
        }
    }
}

impl<T: Item> Stream<T> {
    /// Emits `(latest of self, latest of other)` whenever either emits, once both have
    /// emitted at least once. Each latest value holds its token until it is replaced.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let both = a.combine_latest(&b).sink_to_vec();
    /// a.emit(1).await?;
    /// a.emit(2).await?;
    /// b.emit('a').await?;
    /// a.emit(3).await?;
    /// b.emit('b').await?;
    /// assert_eq!(both.snapshot(), vec![(2, 'a'), (3, 'a'), (3, 'b')]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn combine_latest<U: Item>(&self, other: &Stream<U>) -> Stream<(T, U)> {
        self.combine_latest_on(other, EmitOn::Either)
    }

    /// Like [`combine_latest`](Self::combine_latest), emitting only when the input chosen by
    /// `emit_on` emits (Streamz's `emit_on`). The other input only updates its latest value.
    ///
    /// ```
    /// use brooklet::{EmitOn, Source};
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let on_a = a.combine_latest_on(&b, EmitOn::Left).sink_to_vec();
    /// a.emit(1).await?;
    /// b.emit('a').await?;
    /// a.emit(2).await?;
    /// a.emit(3).await?;
    /// b.emit('b').await?;
    /// a.emit(4).await?;
    /// assert_eq!(on_a.snapshot(), vec![(2, 'a'), (3, 'a'), (4, 'b')]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn combine_latest_on<U: Item>(&self, other: &Stream<U>, emit_on: EmitOn) -> Stream<(T, U)> {
        let node = self.then_node(
            "combine_latest",
            CombineLatest {
                emit_on,
                latest: Lock::new(Latest {
                    a: None,
                    b: None,
                    ended: false,
                }),
            },
        );
        node.link_port::<1>(other);
        Stream::from_node(node)
    }
}
