//! The open windows (tumbling) or panes (hopping) of one key, by start.
//!
//! A key has few of them at a time (one or two tumbling windows, `size / step` panes plus the
//! grace period's), created at the back and closed from the front in time order. A sorted
//! `VecDeque` does this with one allocation reused for the key's lifetime, where a `BTreeMap`
//! allocates a node per key and walks it on every lookup. Lookups look at the back first: an
//! in-order event lands in the newest slot.

use std::collections::VecDeque;

pub(crate) struct Slots<V> {
    items: VecDeque<(i64, V)>,
}

impl<V> Slots<V> {
    pub(crate) fn new() -> Self {
        Slots {
            items: VecDeque::new(),
        }
    }

    /// The index of `start`, or where it would go.
    #[inline]
    fn find(&self, start: i64) -> Result<usize, usize> {
        match self.items.back() {
            Some(&(s, _)) if s == start => Ok(self.items.len() - 1),
            Some(&(s, _)) if s < start => Err(self.items.len()),
            None => Err(0),
            _ => self.items.binary_search_by_key(&start, |&(s, _)| s),
        }
    }

    /// The first index at or after `start`. Windows and panes are looked up by bounds that
    /// mostly lie before the first slot or after the last: those take no search.
    #[inline]
    fn lower(&self, start: i64) -> usize {
        match (self.items.front(), self.items.back()) {
            (Some(&(first, _)), _) if first >= start => 0,
            (_, Some(&(last, _))) if last < start => self.items.len(),
            (None, _) => 0,
            _ => self.items.partition_point(|&(s, _)| s < start),
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, start: i64) -> Option<&mut V> {
        let i = self.find(start).ok()?;
        Some(&mut self.items[i].1)
    }

    pub(crate) fn get(&self, start: i64) -> Option<&V> {
        let i = self.find(start).ok()?;
        Some(&self.items[i].1)
    }

    pub(crate) fn contains(&self, start: i64) -> bool {
        self.find(start).is_ok()
    }

    /// Stores `v` at `start`, replacing what was there; returns its position.
    pub(crate) fn insert(&mut self, start: i64, v: V) -> usize {
        match self.find(start) {
            Ok(i) => {
                self.items[i].1 = v;
                i
            }
            Err(i) if i == self.items.len() => {
                self.items.push_back((start, v));
                i
            }
            Err(i) => {
                self.items.insert(i, (start, v));
                i
            }
        }
    }

    pub(crate) fn remove(&mut self, start: i64) -> Option<V> {
        let i = self.find(start).ok()?;
        if i == 0 {
            return self.items.pop_front().map(|(_, v)| v);
        }
        self.items.remove(i).map(|(_, v)| v)
    }

    pub(crate) fn first(&self) -> Option<(i64, &V)> {
        self.items.front().map(|(s, v)| (*s, v))
    }

    pub(crate) fn pop_first(&mut self) -> Option<(i64, V)> {
        self.items.pop_front()
    }

    /// The slots starting in `[from, to)`, ascending.
    pub(crate) fn range(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, &V)> {
        let a = self.lower(from);
        let b = if to <= from { a } else { self.lower(to) };
        self.items.range(a..b).map(|(s, v)| (*s, v))
    }

    /// The slots starting in `[from, to]`, ascending.
    pub(crate) fn range_incl_mut(
        &mut self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (i64, &mut V)> {
        let a = self.lower(from);
        let b = self.items.partition_point(|&(s, _)| s <= to).max(a);
        self.items.range_mut(a..b).map(|(s, v)| (*s, v))
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slots_keep_starts_sorted_whatever_the_insert_order() {
        let mut s = Slots::new();
        for k in [5, 1, 9, 3, 7, 9] {
            s.insert(k, k * 10);
        }
        assert_eq!(s.insert(0, 0), 0);
        assert_eq!(s.insert(8, 80), 5);
        assert_eq!(s.remove(0), Some(0));
        assert_eq!(s.remove(8), Some(80));
        assert_eq!(s.len(), 5);
        assert_eq!(
            s.range(i64::MIN, i64::MAX)
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            [1, 3, 5, 7, 9]
        );
        assert_eq!(s.range(3, 7).map(|(k, _)| k).collect::<Vec<_>>(), [3, 5]);
        assert_eq!(s.range(8, 2).count(), 0);
        assert_eq!(
            s.range_incl_mut(3, 7).map(|(k, _)| k).collect::<Vec<_>>(),
            [3, 5, 7]
        );
        assert_eq!(s.get(7), Some(&70));
        assert!(!s.contains(4));
        *s.get_mut(5).expect("present") += 1;
        assert_eq!(s.remove(5), Some(51));
        assert_eq!(s.remove(1), Some(10));
        assert_eq!(s.remove(4), None);
        assert_eq!(s.first(), Some((3, &30)));
        assert_eq!(s.pop_first(), Some((3, 30)));
        assert_eq!(s.len(), 2);
    }
}
