//! `zip_latest`: every element of one stream, paired with the latest of another.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::graph::sync::{Lock, until};
use crate::graph::{Acks, Cx, Input, Operator, Outputs};
use crate::ops::zip::DEFAULT_ZIP_BOUND;
use crate::{Item, Stream};

struct State<A, B> {
    /// Lossless elements that arrived before the other input had a value.
    waiting: VecDeque<(A, Acks)>,
    latest: Option<(B, Acks)>,
    /// The node has ended: later elements (pushes that raced `close()`) are refused.
    ended: bool,
}

struct Shared<A, B> {
    state: Lock<State<A, B>>,
    room: Notify,
}

pub(crate) struct ZipLatest<A, B> {
    bound: usize,
    shared: Arc<Shared<A, B>>,
}

impl<A: Item, B: Item> Operator for ZipLatest<A, B> {
    type Out = (A, B);

    fn on_end(&self, _out: &Outputs<(A, B)>, _cx: &mut Cx) {
        let waiting = {
            let mut s = self.shared.state.lock();
            s.ended = true;
            (std::mem::take(&mut s.waiting), s.latest.take())
        };
        drop(waiting);
        self.shared.room.notify_waiters();
    }

    fn held(&self) -> usize {
        let s = self.shared.state.lock();
        s.waiting.len() + s.latest.is_some() as usize
    }
}

impl<A: Item, B: Item> Input<0> for ZipLatest<A, B> {
    type In = A;

    fn on_input(&self, x: A, out: &Outputs<(A, B)>, cx: &mut Cx) {
        let ready = {
            let mut s = self.shared.state.lock();
            if s.ended {
                drop(s);
                return cx.reject_closed();
            }
            match &s.latest {
                Some((y, their)) => Some(((x, y.clone()), cx.acks.merge(their))),
                None => {
                    s.waiting.push_back((x, cx.acks.clone()));
                    if s.waiting.len() > self.bound {
                        let shared = self.shared.clone();
                        let bound = self.bound;
                        cx.wait(async move {
                            until(&shared.room, || {
                                let s = shared.state.lock();
                                s.waiting.len() <= bound || s.ended
                            })
                            .await;
                            Ok(())
                        });
                    }
                    None
                }
            }
        };
        if let Some((pair, acks)) = ready {
            out.push_acked(pair, acks, cx);
        }
    }
}

impl<A: Item, B: Item> Input<1> for ZipLatest<A, B> {
    type In = B;

    fn on_input(&self, y: B, out: &Outputs<(A, B)>, cx: &mut Cx) {
        let (waiting, _replaced) = {
            let mut s = self.shared.state.lock();
            if s.ended {
                drop(s);
                return cx.reject_closed();
            }
            let replaced = s.latest.replace((y.clone(), cx.acks.clone()));
            (std::mem::take(&mut s.waiting), replaced)
        };
        if waiting.is_empty() {
            return;
        }
        self.shared.room.notify_waiters();
        // Each pair on its own: a panic on one's path does not take the others with it.
        let pairs: Vec<_> = waiting
            .into_iter()
            .map(|(x, acks)| ((x, y.clone()), acks.merge(&cx.acks)))
            .collect();
        out.push_each_acked(pairs, cx);
    }
}

impl<T: Item> Stream<T> {
    /// Pairs every element of this stream (lossless) with the latest element of `other`
    /// (lossy). Elements that arrive before `other` has emitted wait, in order, and are all
    /// emitted with `other`'s first element; at most [`DEFAULT_ZIP_BOUND`] wait before `emit`
    /// pends. Waiting elements hold their tokens until emitted; the latest of `other` holds
    /// its token until replaced.
    ///
    /// ```
    /// use brooklet::Source;
    /// # futures::executor::block_on(async {
    /// let a = Source::new();
    /// let b = Source::new();
    /// let zipped = a.zip_latest(&b).sink_to_vec();
    /// a.emit(1).await?;
    /// a.emit(2).await?;
    /// b.emit('a').await?;
    /// b.emit('b').await?;
    /// a.emit(3).await?;
    /// assert_eq!(zipped.snapshot(), vec![(1, 'a'), (2, 'a'), (3, 'b')]);
    /// # Ok::<(), brooklet::Error>(()) }).unwrap();
    /// ```
    pub fn zip_latest<U: Item>(&self, other: &Stream<U>) -> Stream<(T, U)> {
        let node = self.then_node(
            "zip_latest",
            ZipLatest {
                bound: DEFAULT_ZIP_BOUND,
                shared: Arc::new(Shared {
                    state: Lock::new(State {
                        waiting: VecDeque::new(),
                        latest: None,
                        ended: false,
                    }),
                    room: Notify::new(),
                }),
            },
        );
        node.link_port::<1>(other);
        Stream::from_node(node)
    }
}
