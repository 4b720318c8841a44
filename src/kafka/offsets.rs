//! Which offset of a partition may be committed: the contiguous-prefix rule.
//!
//! Why: a message can finish out of order (a parallel map, a window that holds some messages
//! longer than others), but a Kafka commit of offset `N + 1` says "everything up to `N` is
//! done". Committing the highest finished offset would lose the unfinished ones below it on a
//! crash. So each partition keeps the offsets it handed out, in order, and its committable
//! position only moves past a prefix of handed-out offsets that are all done.
//!
//! Invariants:
//! - Offsets are tracked in increasing order per partition (the order Kafka delivers them);
//!   gaps between them (compacted records, transaction markers) are fine: only the offsets
//!   handed out count.
//! - The committable position is `last + 1` where `last` ends the longest done prefix; it never
//!   moves backwards and never passes an offset that is not done.
//! - A failed offset is never done: the position stays before it for good.
//! - Completing an offset that is not tracked (twice, or after the partition was revoked) is
//!   ignored.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::graph::sync::Lock;
use crate::window::keyhash::KeyMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Pending,
    Done,
    Failed,
}

/// Offsets handed out on one partition, and how far they are done.
#[derive(Debug, Default)]
pub(crate) struct PartitionOffsets {
    /// Offsets handed out and not yet part of the done prefix, in increasing order.
    window: VecDeque<(i64, State)>,
    /// The position to commit (next offset to read), once anything is done.
    committable: Option<i64>,
    /// The position last committed (or being committed).
    committed: Option<i64>,
}

impl PartitionOffsets {
    /// Records that `offset` was handed out. Offsets must come in increasing order; an offset at
    /// or below the last tracked one is refused (returns false), as it cannot be ordered.
    pub(crate) fn track(&mut self, offset: i64) -> bool {
        let last = self
            .window
            .back()
            .map(|e| e.0)
            .or(self.committable.map(|c| c - 1));
        if last.is_some_and(|l| offset <= l) {
            return false;
        }
        self.window.push_back((offset, State::Pending));
        true
    }

    /// Marks `offset` done; moves the committable position over the done prefix.
    pub(crate) fn done(&mut self, offset: i64) {
        self.set(offset, State::Done);
        while let Some(&(o, State::Done)) = self.window.front() {
            self.window.pop_front();
            self.committable = Some(o + 1);
        }
    }

    /// Marks `offset` failed: the committable position never passes it.
    pub(crate) fn fail(&mut self, offset: i64) {
        self.set(offset, State::Failed);
    }

    fn set(&mut self, offset: i64, state: State) {
        let i = self.window.partition_point(|e| e.0 < offset);
        if let Some(e) = self.window.get_mut(i)
            && e.0 == offset
            && e.1 == State::Pending
        {
            e.1 = state;
        }
    }

    /// The position to commit: one past the end of the done prefix.
    pub(crate) fn committable(&self) -> Option<i64> {
        self.committable
    }

    /// The committable position if it moved since the last call; records it as committed.
    pub(crate) fn take_uncommitted(&mut self) -> Option<i64> {
        match self.committable {
            Some(c) if self.committed != Some(c) => {
                self.committed = Some(c);
                Some(c)
            }
            _ => None,
        }
    }

    /// A commit of `position` failed: unless the position moved on since, forget that it was
    /// committed, so the next [`take_uncommitted`](Self::take_uncommitted) returns it again.
    pub(crate) fn commit_failed(&mut self, position: i64) {
        if self.committed == Some(position) {
            self.committed = None;
        }
    }

    /// The first failed offset, if one is tracked.
    #[cfg(test)]
    pub(crate) fn failed(&self) -> Option<i64> {
        self.window
            .iter()
            .find(|e| e.1 == State::Failed)
            .map(|e| e.0)
    }

    /// Offsets handed out and not yet in the done prefix.
    pub(crate) fn in_flight(&self) -> usize {
        self.window.len()
    }
}

/// One assigned partition: its offsets, shared with the acknowledgement tokens of its messages.
///
/// A token holds the `Arc` of the partition it came from, so a token released after the
/// partition was revoked (or revoked and assigned again, which makes a new `Partition`) finds
/// its own, dead, partition and changes nothing.
#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    offsets: Lock<PartitionOffsets>,
    live: AtomicBool,
}

impl Partition {
    /// Records that `offset` was handed out; false when it cannot be (revoked, or not after
    /// the last one).
    pub(crate) fn track(&self, offset: i64) -> bool {
        self.is_live() && self.offsets.lock().track(offset)
    }

    /// Marks `offset` done.
    pub(crate) fn done(&self, offset: i64) {
        self.offsets.lock().done(offset);
    }

    /// Marks `offset` failed: nothing at or past it is ever committed from this assignment.
    pub(crate) fn fail(&self, offset: i64) {
        self.offsets.lock().fail(offset);
    }

    /// A commit of `position` failed (see [`PartitionOffsets::commit_failed`]).
    pub(crate) fn commit_failed(&self, position: i64) {
        self.offsets.lock().commit_failed(position);
    }

    /// Whether the partition is still assigned to this consumer.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }
}

/// The partitions assigned to one consumer, by topic and number.
#[derive(Debug, Default)]
pub(crate) struct Assignment {
    parts: Lock<ByTopic>,
}

/// Partitions by topic, then number (a topic is looked up by `&str`). Every message read
/// looks its partition up here, so the maps use the same cheap hasher as the window key maps
/// (topic names and partition numbers come from the broker, not from an adversary).
type ByTopic = KeyMap<Arc<str>, KeyMap<i32, Arc<Partition>>>;

impl Assignment {
    /// Starts tracking a newly assigned partition (a fresh state if it was assigned before).
    pub(crate) fn assign(&self, topic: &str, partition: i32) {
        let part = Arc::new(Partition {
            topic: topic.into(),
            partition,
            offsets: Lock::new(PartitionOffsets::default()),
            live: AtomicBool::new(true),
        });
        let old = self
            .parts
            .lock()
            .entry(part.topic.clone())
            .or_default()
            .insert(partition, part);
        if let Some(old) = old {
            old.live.store(false, Ordering::Release);
        }
    }

    /// Stops tracking a revoked partition and returns its committable position (whether or
    /// not a periodic commit sent it already: that commit may have failed). Tokens of its
    /// messages released later change nothing.
    pub(crate) fn revoke(&self, topic: &str, partition: i32) -> Option<i64> {
        let part = self.parts.lock().get_mut(topic)?.remove(&partition)?;
        part.live.store(false, Ordering::Release);
        part.offsets.lock().committable()
    }

    /// Stops tracking every partition (the consumer lost its assignment or is closing).
    pub(crate) fn revoke_all(&self) {
        for (_, parts) in self.parts.lock().drain() {
            for part in parts.into_values() {
                part.live.store(false, Ordering::Release);
            }
        }
    }

    /// The partition currently assigned under this topic and number.
    pub(crate) fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.parts.lock().get(topic)?.get(&partition).cloned()
    }

    /// Positions to commit: those that moved since they were last taken, or every committable
    /// one when `all` is set.
    pub(crate) fn positions(&self, all: bool) -> Vec<(Arc<str>, i32, i64)> {
        let parts = self.parts.lock();
        let mut out = Vec::new();
        for part in parts.values().flat_map(KeyMap::values) {
            let mut offsets = part.offsets.lock();
            let pos = if all {
                let c = offsets.committable();
                offsets.take_uncommitted();
                c
            } else {
                offsets.take_uncommitted()
            };
            if let Some(pos) = pos {
                out.push((part.topic.clone(), part.partition, pos));
            }
        }
        out
    }

    /// A commit of these positions failed: they are sent again by the next periodic commit.
    pub(crate) fn commit_failed(&self, positions: impl IntoIterator<Item = (String, i32, i64)>) {
        for (topic, partition, position) in positions {
            if let Some(part) = self.get(&topic, partition) {
                part.commit_failed(position);
            }
        }
    }

    /// Messages handed out and not yet done, over every partition.
    pub(crate) fn in_flight(&self) -> usize {
        self.parts
            .lock()
            .values()
            .flat_map(KeyMap::values)
            .map(|p| p.offsets.lock().in_flight())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_commit_is_taken_again_unless_the_position_moved_on() {
        let a = Assignment::default();
        a.assign("t", 0);
        let p = a.get("t", 0).unwrap();
        assert!(p.track(10) && p.track(11));
        p.done(10);
        assert_eq!(a.positions(false), vec![("t".into(), 0, 11)]);
        assert!(a.positions(false).is_empty(), "sent once");
        a.commit_failed([("t".to_string(), 0, 11)]);
        assert_eq!(a.positions(false), vec![("t".into(), 0, 11)], "sent again");
        // A failure reported for an older position after a newer one was taken changes
        // nothing: the newer one is in flight.
        p.done(11);
        assert_eq!(a.positions(false), vec![("t".into(), 0, 12)]);
        a.commit_failed([("t".to_string(), 0, 11)]);
        assert!(a.positions(false).is_empty());
    }

    /// A small deterministic generator (xorshift64*), so the randomized cases replay exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn in_order_completion_moves_one_by_one() {
        let mut p = PartitionOffsets::default();
        assert_eq!(p.committable(), None);
        for o in 10..13 {
            assert!(p.track(o));
        }
        p.done(10);
        assert_eq!(p.committable(), Some(11));
        p.done(11);
        p.done(12);
        assert_eq!(p.committable(), Some(13));
        assert_eq!(p.in_flight(), 0);
    }

    #[test]
    fn out_of_order_completion_waits_for_the_gap() {
        let mut p = PartitionOffsets::default();
        for o in 0..5 {
            p.track(o);
        }
        p.done(3);
        p.done(1);
        p.done(4);
        assert_eq!(p.committable(), None, "offset 0 is not done");
        p.done(0);
        assert_eq!(p.committable(), Some(2), "offset 2 is not done");
        p.done(2);
        assert_eq!(p.committable(), Some(5));
    }

    #[test]
    fn gaps_between_offsets_do_not_block() {
        let mut p = PartitionOffsets::default();
        for o in [5, 9, 20] {
            p.track(o);
        }
        p.done(9);
        p.done(5);
        assert_eq!(p.committable(), Some(10));
        p.done(20);
        assert_eq!(p.committable(), Some(21));
    }

    #[test]
    fn a_failed_offset_is_never_passed() {
        let mut p = PartitionOffsets::default();
        for o in 0..4 {
            p.track(o);
        }
        p.done(0);
        p.fail(1);
        p.done(2);
        p.done(3);
        p.done(1); // a late "done" for the failed offset does not count
        assert_eq!(p.committable(), Some(1));
        assert_eq!(p.failed(), Some(1));
    }

    #[test]
    fn repeated_and_unknown_completions_are_ignored() {
        let mut p = PartitionOffsets::default();
        p.track(0);
        p.track(1);
        p.done(7);
        p.done(1);
        p.done(1);
        assert_eq!(p.committable(), None);
        p.done(0);
        assert_eq!(p.committable(), Some(2));
        p.done(0);
        assert_eq!(p.committable(), Some(2));
    }

    #[test]
    fn offsets_must_increase() {
        let mut p = PartitionOffsets::default();
        assert!(p.track(3));
        assert!(!p.track(3));
        assert!(!p.track(1));
        p.done(3);
        assert!(!p.track(2), "below the committable position");
        assert!(p.track(4));
    }

    #[test]
    fn take_uncommitted_reports_each_position_once() {
        let mut p = PartitionOffsets::default();
        p.track(0);
        p.track(1);
        assert_eq!(p.take_uncommitted(), None);
        p.done(0);
        assert_eq!(p.take_uncommitted(), Some(1));
        assert_eq!(p.take_uncommitted(), None);
        p.done(1);
        assert_eq!(p.take_uncommitted(), Some(2));
    }

    /// Random offsets (with gaps) completed in a random order, some failed: after every step the
    /// committable position equals the one computed from scratch.
    #[test]
    fn randomized_out_of_order_completion_matches_the_prefix_rule() {
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let n = 1 + rng.below(200);
            let mut offsets = Vec::with_capacity(n);
            let mut o = rng.below(1000) as i64;
            for _ in 0..n {
                offsets.push(o);
                o += 1 + if rng.below(4) == 0 {
                    rng.below(5) as i64
                } else {
                    0
                };
            }
            let mut p = PartitionOffsets::default();
            for &o in &offsets {
                assert!(p.track(o));
            }
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let with_failure = rng.below(3) == 0;
            let fail_at = rng.below(n);
            // state per index: 0 pending, 1 done, 2 failed
            let mut state = vec![0u8; n];
            let mut last_seen = None;
            for &i in &order {
                if with_failure && i == fail_at {
                    p.fail(offsets[i]);
                    state[i] = 2;
                } else {
                    p.done(offsets[i]);
                    state[i] = 1;
                }
                let prefix = state.iter().take_while(|s| **s == 1).count();
                let expected = (prefix > 0).then(|| offsets[prefix - 1] + 1);
                assert_eq!(p.committable(), expected, "seed {seed}");
                assert!(p.committable() >= last_seen, "seed {seed}: moved backwards");
                last_seen = p.committable();
            }
            if with_failure {
                let expected = (fail_at > 0).then(|| offsets[fail_at - 1] + 1);
                assert_eq!(p.committable(), expected, "seed {seed}");
                assert_eq!(p.failed(), Some(offsets[fail_at]));
            } else {
                assert_eq!(p.committable(), Some(offsets[n - 1] + 1), "seed {seed}");
                assert_eq!(p.in_flight(), 0);
            }
        }
    }
}
