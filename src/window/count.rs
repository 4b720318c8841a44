//! Count windows: windows of `n` events per key, one starting every `step` events.
//!
//! Event number `i` of a key (from 0) belongs to the windows starting at `k * step` with
//! `k * step <= i < k * step + n`. A window closes on its n-th event (the one exception to
//! "an event never closes a window it has just updated"). Count windows have no lateness: the
//! clock plays no part. A result reports the smallest and largest event timestamps of its
//! window as `start` and `end` (both inclusive), or the event indexes when no timestamp
//! extractor was given.
//!
//! At end of stream, a leftover partial window is emitted (with
//! [`Leftover::Flush`](super::Leftover::Flush), the default) when it holds an event that no
//! emitted window held; windows are considered oldest first, and those emitted this way count
//! as emitted. Leftovers of several keys come out by ascending `(end, start)`, then key order.
//!
//! A key's state is freed when it holds no open window: with tumbling count windows
//! (`step == n`), after each n-th event; hopping count windows always hold a partial window,
//! which is kept. A key that comes back starts afresh (its windows are aligned the same way,
//! at multiples of `n` of its events). Without a timestamp extractor, results report event
//! indexes, so a freed key keeps its event count (one small entry) and numbering goes on.

use std::collections::VecDeque;
use std::sync::Arc;

use super::aggregate::{Aggregator, add_all};
use super::builder::{EmitMode, Leftover};
use super::keyhash::KeyMap;
use super::late::LateOut;
use super::operator::{Control, KeyFn, Outs, TsFn, WindowKey, push_results, resume};
use super::result::{WindowResult, WindowStats};
use crate::Item;
use crate::graph::sync::Lock;
use crate::graph::{Acks, Cx, Emit, Input, Node, NodeDyn, Operator, Outputs};

struct CountWin<Acc> {
    start: u64,
    count: u64,
    acc: Acc,
    acks: Vec<Acks>,
    min_ts: i64,
    max_ts: i64,
    first_seq: u64,
}

struct KeyCount<K, Acc> {
    key: K,
    next: u64,
    open: VecDeque<CountWin<Acc>>,
    /// The last event index held by an emitted window.
    covered: Option<u64>,
}

struct CountState<K, Acc> {
    index: KeyMap<K, usize>,
    /// Keys with an open window; a freed key is swap-removed.
    keys: Vec<KeyCount<K, Acc>>,
    /// The event counts of freed keys, kept when results report event indexes.
    retired: KeyMap<K, u64>,
    seq: u64,
    stats: WindowStats,
    ended: bool,
}

pub(crate) struct CountOp<T: Item, K: WindowKey, A: Aggregator<T>> {
    pub(crate) n: u64,
    pub(crate) step: u64,
    pub(crate) ts: Option<TsFn<T>>,
    pub(crate) key: KeyFn<T, K>,
    pub(crate) agg: A,
    pub(crate) mode: EmitMode,
    pub(crate) leftover: Leftover,
    state: Lock<CountState<K, A::Acc>>,
    pub(crate) late: LateOut<K, T>,
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> CountOp<T, K, A> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        n: usize,
        step: usize,
        ts: Option<TsFn<T>>,
        key: KeyFn<T, K>,
        agg: A,
        mode: EmitMode,
        leftover: Leftover,
        late: LateOut<K, T>,
    ) -> Self {
        CountOp {
            n: n as u64,
            step: step as u64,
            ts,
            key,
            agg,
            mode,
            leftover,
            state: Lock::new(CountState {
                index: KeyMap::default(),
                keys: Vec::new(),
                retired: KeyMap::default(),
                seq: 0,
                stats: WindowStats::default(),
                ended: false,
            }),
            late,
        }
    }

    fn result(&self, key: &K, w: &CountWin<A::Acc>) -> WindowResult<K, A::Out> {
        WindowResult {
            key: key.clone(),
            start: w.min_ts,
            end: w.max_ts,
            end_inclusive: true,
            value: self.agg.result(&w.acc),
        }
    }

    fn apply(
        &self,
        st: &mut CountState<K, A::Acc>,
        x: &T,
        key: K,
        acks: &Acks,
        out: &mut Outs<K, A::Out>,
    ) {
        // Nothing changes before every user function ran: the event's index, its timestamp
        // and every window's accumulator are computed first (see `aggregate::add_all`).
        let seq = st.seq;
        let existing = st.index.get(&key).copied();
        let i = match existing {
            Some(k) => st.keys[k].next,
            None if self.ts.is_none() => st.retired.get(&key).copied().unwrap_or(0),
            None => 0,
        };
        let ts = match &self.ts {
            Some(f) => f(x),
            None => i64::try_from(i).unwrap_or(i64::MAX),
        };
        let mut fresh = (i % self.step == 0).then(|| CountWin {
            start: i,
            count: 0,
            acc: self.agg.init(),
            acks: Vec::new(),
            min_ts: ts,
            max_ts: ts,
            first_seq: seq,
        });
        let open = existing.map(|k| &mut st.keys[k].open);
        let accs = open
            .into_iter()
            .flat_map(|o| o.iter_mut().map(|w| &mut w.acc))
            .chain(fresh.as_mut().map(|w| &mut w.acc));
        add_all(&self.agg, accs, x, ts);
        st.seq += 1;
        st.stats.events += 1;
        let k = match existing {
            Some(k) => k,
            None => {
                st.retired.remove(&key);
                st.index.insert(key.clone(), st.keys.len());
                st.keys.push(KeyCount {
                    key,
                    next: i,
                    // Every event before `i` was in an emitted window.
                    covered: i.checked_sub(1),
                    open: VecDeque::new(),
                });
                st.keys.len() - 1
            }
        };
        let ks = &mut st.keys[k];
        ks.next += 1;
        if let Some(w) = fresh {
            ks.open.push_back(w);
        }
        for w in ks.open.iter_mut() {
            w.count += 1;
            w.min_ts = w.min_ts.min(ts);
            w.max_ts = w.max_ts.max(ts);
            if !acks.is_empty() {
                w.acks.push(acks.clone());
            }
        }
        if self.mode == EmitMode::Current {
            for w in &ks.open {
                out.push((self.result(&ks.key, w), None));
            }
        }
        if ks.open.front().is_some_and(|w| w.count == self.n) {
            let w = ks.open.pop_front().expect("a full window");
            ks.covered = Some(w.start + w.count - 1);
            if self.mode == EmitMode::Final {
                out.push((self.result(&ks.key, &w), Some(Acks::union(&w.acks))));
            }
        }
        st.stats.results += out.len() as u64;
        if st.keys[k].open.is_empty() {
            Self::free(st, k, self.ts.is_none());
        }
    }

    /// Forgets key `k` (it holds no open window); keeps its event count when `keep_count`.
    fn free(st: &mut CountState<K, A::Acc>, k: usize, keep_count: bool) {
        let ks = st.keys.swap_remove(k);
        st.index.remove(&ks.key);
        if keep_count {
            st.retired.insert(ks.key, ks.next);
        }
        if let Some(moved) = st.keys.get(k)
            && let Some(i) = st.index.get_mut(&moved.key)
        {
            *i = k;
        }
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> Operator for CountOp<T, K, A> {
    type Out = WindowResult<K, A::Out>;

    fn on_end(&self, out: &Outputs<Self::Out>, cx: &mut Cx) {
        type Rest<K, V> = (i64, i64, u64, WindowResult<K, V>, Acks);
        let mut rest: Vec<Rest<K, A::Out>> = Vec::new();
        {
            let mut st = self.state.lock();
            st.ended = true;
            let keys = std::mem::take(&mut st.keys);
            let emit = self.mode == EmitMode::Final && self.leftover == Leftover::Flush;
            for mut ks in keys {
                for w in ks.open.drain(..) {
                    let last = w.start + w.count - 1;
                    if ks.covered.is_none_or(|c| last > c) {
                        ks.covered = Some(last);
                        if emit {
                            let r = self.result(&ks.key, &w);
                            rest.push((w.max_ts, w.min_ts, w.first_seq, r, Acks::union(&w.acks)));
                        }
                    }
                }
            }
            st.stats.results += rest.len() as u64;
        }
        rest.sort_by_key(|(e, s, f, _, _)| (*e, *s, *f));
        let outs = rest.into_iter().map(|(_, _, _, r, acks)| (r, Some(acks)));
        let caught = push_results(out, outs.collect(), cx);
        self.late.finish(cx);
        resume(caught);
    }

    fn held(&self) -> usize {
        self.state.lock().keys.iter().map(|k| k.open.len()).sum()
    }

    fn sides(&self) -> Vec<Arc<dyn NodeDyn>> {
        vec![self.late.node()]
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> Input<0> for CountOp<T, K, A> {
    type In = T;

    fn on_input(&self, x: T, out: &Outputs<Self::Out>, cx: &mut Cx) {
        let key = out.call(|| (self.key)(&x));
        let mut outs = Vec::new();
        {
            let mut st = self.state.lock();
            if st.ended {
                // A push that raced `close()`: the windows were flushed already.
                drop(st);
                return cx.reject_closed();
            }
            out.call(|| self.apply(&mut st, &x, key, &cx.acks, &mut outs));
        }
        resume(push_results(out, outs, cx));
    }
}

impl<T: Item, K: WindowKey, A: Aggregator<T>> Control for Node<CountOp<T, K, A>> {
    /// Count windows have no clock: watermarks change nothing.
    fn advance(&self, _t: i64) -> Emit {
        Cx::new().into_emit()
    }

    fn stats(&self) -> WindowStats {
        let st = self.op.state.lock();
        WindowStats {
            held: st.keys.iter().map(|k| k.open.len() as u64).sum(),
            keys: st.keys.len() as u64,
            retired_keys: st.retired.len() as u64,
            ..st.stats
        }
    }
}
