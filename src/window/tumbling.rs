//! Tumbling windows, and the per-window store they share with hopping windows whose aggregate
//! cannot merge.
//!
//! A tumbling window is a hopping window whose step is its size, so each event belongs to
//! exactly one window `[floor(ts / size) * size, + size)`. The store keeps one accumulator per
//! open window with data; an event updates every open window that contains it (one for
//! tumbling, `size / step` for a non-mergeable hopping aggregate).

use super::aggregate::{Aggregator, add_all};
use super::assign::{Geometry, clamp};
use super::operator::{Admit, Event, Slot, Store, Timer, add_to_slot};
use super::slots::Slots;
use crate::graph::Acks;

/// One accumulator per window start.
pub(crate) struct WindowStore<Acc> {
    slots: Slots<Slot<Acc>>,
}

impl<T, A: Aggregator<T>> Store<T, A> for WindowStore<A::Acc> {
    fn new() -> Self {
        WindowStore {
            slots: Slots::new(),
        }
    }

    fn add(
        &mut self,
        g: &Geometry,
        agg: &A,
        ev: Event<'_, T>,
        wm: i64,
        updated: Option<&mut Vec<(i64, i64)>>,
    ) -> Admit {
        if g.per_event == 1
            && updated.is_none()
            && let Some(start) = g.last_start_if_open(ev.ts, wm)
        {
            // Tumbling, in `i64`: the event's one window is open.
            let admit = Admit {
                accepted: 1,
                ..Admit::default()
            };
            return add_to_slot(&mut self.slots, agg, start, ev, admit);
        }
        let (open, hi, mut admit) = Admit::for_event(g, ev.ts, wm);
        if admit.accepted == 0 {
            return admit;
        }
        if admit.accepted == 1 {
            let start = clamp(open);
            if let Some(u) = updated {
                u.push((start, g.end(open)));
            }
            // One window, updated in place.
            return add_to_slot(&mut self.slots, agg, start, ev, admit);
        }
        // The event goes into every window or none: new windows are built aside, and nothing
        // is stored before every accumulator took the event (see `aggregate::add_all`).
        let (first, last) = (clamp(open), clamp(hi));
        let mut fresh: Vec<(i64, A::Acc)> = g
            .starts(open, hi)
            .map(clamp)
            .filter(|&s| !self.slots.contains(s))
            .map(|s| (s, agg.init()))
            .collect();
        let accs = self
            .slots
            .range_incl_mut(first, last)
            .map(|(_, slot)| &mut slot.acc)
            .chain(fresh.iter_mut().map(|(_, acc)| acc));
        add_all(agg, accs, ev.item, ev.ts);
        admit.opened = !fresh.is_empty();
        for (start, acc) in fresh.drain(..) {
            self.slots.insert(start, Slot::new(acc, ev.seq));
        }
        for (_, slot) in self.slots.range_incl_mut(first, last) {
            slot.hold(ev.acks);
        }
        if let Some(u) = updated {
            u.extend(g.starts(open, hi).map(|s| (clamp(s), g.end(s))));
        }
        admit
    }

    fn current(&self, _g: &Geometry, agg: &A, start: i64, _end: i64) -> A::Out {
        agg.result(&self.slots.get(start).expect("an open window").acc)
    }

    fn next(&mut self, g: &Geometry, _wm: i64, _last_start: i64) -> Option<Timer> {
        self.slots
            .first()
            .map(|(s, slot)| (g.end(s as i128), s, slot.first_seq))
    }

    fn take(
        &mut self,
        _g: &Geometry,
        agg: &A,
        start: i64,
        _end: i64,
        emit: bool,
    ) -> Option<(A::Out, Acks)> {
        let slot = self.slots.remove(start)?;
        emit.then(|| (agg.result(&slot.acc), Acks::union(&slot.acks)))
    }

    fn held(&self) -> usize {
        self.slots.len()
    }
}
