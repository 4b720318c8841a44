//! The reorder buffer: results arrive in completion order and leave in sequence order.
//!
//! Invariant: `base` is the sequence number of the next result to leave; slot `i` holds the
//! result numbered `base + i` once it has arrived. Sequence numbers are dense (every number
//! below the last one handed out belongs to an element that will produce exactly one result),
//! so the buffer never waits for a number that does not come.

use std::collections::VecDeque;

pub(crate) struct Reorder<V> {
    base: u64,
    slots: VecDeque<Option<V>>,
}

impl<V> Reorder<V> {
    pub(crate) fn new() -> Self {
        Reorder {
            base: 0,
            slots: VecDeque::new(),
        }
    }

    /// Stores the result numbered `seq`.
    pub(crate) fn insert(&mut self, seq: u64, v: V) {
        let i = usize::try_from(seq - self.base).expect("sequence gap fits in memory");
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        debug_assert!(self.slots[i].is_none(), "result {seq} arrived twice");
        self.slots[i] = Some(v);
    }

    /// Stores the result numbered `seq` and returns the next one in order, if it has arrived:
    /// `insert` then `pop`, without touching the buffer when `seq` is the next and nothing
    /// waits (the usual case for a pool that keeps up).
    pub(crate) fn take_next(&mut self, seq: u64, v: V) -> Option<V> {
        if seq == self.base && self.slots.is_empty() {
            self.base += 1;
            return Some(v);
        }
        self.insert(seq, v);
        self.pop()
    }

    /// The number after the last one stored or taken: where a result that is ready on
    /// arrival goes.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Everything held, in no particular order (for failing it when the task stops).
    pub(crate) fn drain_all(&mut self) -> impl Iterator<Item = V> + '_ {
        self.slots.drain(..).flatten()
    }

    /// The next result in sequence order, if it has arrived.
    pub(crate) fn pop(&mut self) -> Option<V> {
        match self.slots.front() {
            Some(Some(_)) => {
                self.base += 1;
                self.slots.pop_front().flatten()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reorder;

    #[test]
    fn releases_in_sequence_order() {
        let mut r = Reorder::new();
        r.insert(2, 'c');
        assert_eq!(r.pop(), None);
        r.insert(0, 'a');
        assert_eq!(r.pop(), Some('a'));
        assert_eq!(r.pop(), None);
        r.insert(1, 'b');
        assert_eq!((r.pop(), r.pop(), r.pop()), (Some('b'), Some('c'), None));
    }

    #[test]
    fn take_next_is_insert_then_pop() {
        let mut r = Reorder::new();
        assert_eq!(r.take_next(0, 'a'), Some('a'));
        assert_eq!(r.take_next(2, 'c'), None);
        assert_eq!(r.take_next(1, 'b'), Some('b'));
        assert_eq!(r.pop(), Some('c'));
        assert_eq!(r.take_next(3, 'd'), Some('d'));
        assert_eq!(r.pop(), None);
        assert_eq!(r.end(), 4);
        r.insert(r.end(), 'e');
        assert_eq!(r.pop(), Some('e'));
    }
}
