//! The queue of window closings: each key's earliest window with data, ordered by
//! `(end, start, first arrival of the key in the window, key slot)`.
//!
//! A binary min-heap with lazy removal. Every window that closes costs one push (its key's
//! next window) and one pop; a balanced tree would also allocate, rebalance and compare
//! four-field keys all the way down, several times what a heap does.
//!
//! Invariants:
//!
//! - The authoritative timer of a key is the one its state holds (`KeyState::timer`). A heap
//!   entry counts only while it equals that timer ([`Timers::pop_valid`] drops the others as
//!   it meets them), so moving or cancelling a timer is a push or nothing at all.
//! - An entry names its key by slot, and slots move when keys are freed, but an entry can never
//!   be taken for another key's timer: the first-arrival number in it is the arrival number of
//!   one of its key's events, which no other key shares.
//! - Stale entries never outnumber the keys by much: once the heap holds more than twice the
//!   keys plus [`SLACK`] entries, it is rebuilt from the keys' own timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::operator::Timer;

/// Stale entries tolerated beyond twice the number of keys before a rebuild.
const SLACK: usize = 64;

/// A timer entry: `(end, start, first arrival, key slot)`.
pub(crate) type Entry = (i64, i64, u64, usize);

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl Timers {
    /// Schedules `t` for key slot `k`; the key's previous entry, if any, goes stale. `keys` is
    /// the number of key slots, and `timers` yields every key's current timer, for a rebuild.
    #[inline]
    pub(crate) fn push(
        &mut self,
        t: Timer,
        k: usize,
        keys: usize,
        timers: impl FnOnce() -> Vec<Entry>,
    ) {
        self.heap.push(Reverse((t.0, t.1, t.2, k)));
        if self.heap.len() > 2 * keys + SLACK {
            self.rebuild(timers());
        }
    }

    #[cold]
    fn rebuild(&mut self, timers: Vec<Entry>) {
        self.heap = timers.into_iter().map(Reverse).collect();
    }

    /// The end of the earliest entry, valid or not: no window closes before it.
    #[inline]
    pub(crate) fn earliest_end(&self) -> Option<i64> {
        self.heap.peek().map(|e| e.0.0)
    }

    /// Removes and returns the earliest valid entry whose end is at or below `wm`; stale
    /// entries met on the way are dropped. `current(k)` is key slot `k`'s timer, `None` for a
    /// slot that no longer exists.
    #[inline]
    pub(crate) fn pop_due(
        &mut self,
        wm: i64,
        current: impl Fn(usize) -> Option<Timer>,
    ) -> Option<Entry> {
        while let Some(&Reverse(e)) = self.heap.peek() {
            if e.0 > wm {
                return None;
            }
            self.heap.pop();
            if current(e.3) == Some((e.0, e.1, e.2)) {
                return Some(e);
            }
        }
        None
    }

    /// Removes and returns the earliest valid entry, due or not (see
    /// [`pop_due`](Self::pop_due)).
    pub(crate) fn pop_valid(&mut self, current: impl Fn(usize) -> Option<Timer>) -> Option<Entry> {
        self.pop_due(i64::MAX, current)
    }

    /// Puts back an entry taken by [`pop_valid`](Self::pop_valid) and not acted on.
    pub(crate) fn restore(&mut self, e: Entry) {
        self.heap.push(Reverse(e));
    }

    /// Entries in the heap, stale ones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_timers_come_out_in_order_and_skip_moved_ones() {
        let mut current: Vec<Option<Timer>> = vec![None; 3];
        let mut q = Timers::default();
        let set = |q: &mut Timers, current: &mut Vec<Option<Timer>>, k: usize, t: Timer| {
            current[k] = Some(t);
            q.push(t, k, current.len(), Vec::new);
        };
        set(&mut q, &mut current, 0, (30, 20, 5));
        set(&mut q, &mut current, 1, (20, 10, 7));
        set(&mut q, &mut current, 2, (20, 10, 3));
        // Key 0 moves earlier: its first entry goes stale.
        set(&mut q, &mut current, 0, (10, 0, 9));
        assert_eq!(q.earliest_end(), Some(10));
        let look = |c: &Vec<Option<Timer>>| {
            let c = c.clone();
            move |k: usize| c.get(k).copied().flatten()
        };
        assert_eq!(q.pop_due(15, look(&current)), Some((10, 0, 9, 0)));
        current[0] = None;
        assert_eq!(q.pop_due(15, look(&current)), None);
        // Same end: ascending start, then first arrival.
        assert_eq!(q.pop_due(20, look(&current)), Some((20, 10, 3, 2)));
        current[2] = None;
        assert_eq!(q.pop_due(20, look(&current)), Some((20, 10, 7, 1)));
        current[1] = None;
        // The stale (30, 20, 5) of key 0 is dropped, not returned.
        assert_eq!(q.pop_valid(look(&current)), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn window_timers_rebuild_when_stale_entries_pile_up() {
        let mut q = Timers::default();
        // One key whose timer moves 1,000 times: the heap stays within 2 + SLACK entries.
        for i in 0..1_000 {
            let t = (1_000 - i, 0, i as u64);
            q.push(t, 0, 1, || vec![(t.0, t.1, t.2, 0)]);
            assert!(q.len() <= 2 + SLACK + 1, "{} entries", q.len());
        }
        let last = (1, 0, 999);
        assert_eq!(
            q.pop_valid(|_| Some(last)),
            Some((last.0, last.1, last.2, 0))
        );
    }
}
