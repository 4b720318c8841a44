//! Tumbling windows, and the per-window store they share with hopping windows whose aggregate
//! cannot merge.
//!
//! A tumbling window is a hopping window whose step is its size, so each event belongs to
//! exactly one window `[floor(ts / size) * size, + size)`. The store keeps one accumulator per
//! open window with data; an event updates every open window that contains it (one for
//! tumbling, `size / step` for a non-mergeable hopping aggregate).

use std::collections::BTreeMap;

use super::aggregate::Aggregator;
use super::assign::{Geometry, clamp};
use super::operator::{Admit, Event, Slot, Store, Timer};
use crate::graph::Acks;

/// One accumulator per window start.
pub(crate) struct WindowStore<Acc> {
    slots: BTreeMap<i64, Slot<Acc>>,
}

impl<T, A: Aggregator<T>> Store<T, A> for WindowStore<A::Acc> {
    fn new() -> Self {
        WindowStore {
            slots: BTreeMap::new(),
        }
    }

    fn add(
        &mut self,
        g: &Geometry,
        agg: &A,
        ev: Event<'_, T>,
        wm: i64,
        mut updated: Option<&mut Vec<(i64, i64)>>,
    ) -> Admit {
        let (lo, hi) = g.containing(ev.ts);
        let open = g.first_open(wm).max(lo);
        let mut admit = Admit::rejected_between(g, lo, hi.min(open - g.step as i128));
        admit.accepted = g.count(open, hi);
        for s in g.starts(open, hi) {
            let start = clamp(s);
            let slot = self.slots.entry(start).or_insert_with(|| {
                admit.opened = true;
                Slot::new(agg.init(), ev.seq)
            });
            agg.add(&mut slot.acc, ev.item, ev.ts);
            slot.hold(ev.acks);
            if let Some(u) = updated.as_deref_mut() {
                u.push((start, g.end(s)));
            }
        }
        admit
    }

    fn current(&self, _g: &Geometry, agg: &A, start: i64, _end: i64) -> A::Out {
        agg.result(&self.slots[&start].acc)
    }

    fn next(&mut self, g: &Geometry, _wm: i64, _last_start: i64) -> Option<Timer> {
        self.slots
            .first_key_value()
            .map(|(s, slot)| (g.end(*s as i128), *s, slot.first_seq))
    }

    fn take(
        &mut self,
        _g: &Geometry,
        agg: &A,
        start: i64,
        _end: i64,
        emit: bool,
    ) -> Option<(A::Out, Acks)> {
        let slot = self.slots.remove(&start)?;
        emit.then(|| (agg.result(&slot.acc), Acks::union(&slot.acks)))
    }

    fn held(&self) -> usize {
        self.slots.len()
    }
}
