//! The late-event side output, and rate-limited warnings when nobody consumes it.
//!
//! An event that a closed window rejects is never silently lost: exactly one
//! [`LateEvent`](super::LateEvent) record per such event goes to the operator's `late` stream.
//! With nothing connected to that stream, each late event is logged at debug level, and a
//! warning is logged for the 1st, 2nd, 4th, 8th, ... late event of the operator: the number of
//! warning lines grows with the logarithm of the number of late events, never one per event.

use std::sync::Arc;

use crate::graph::{Cx, NodeDyn, Side};
use crate::{Item, Stream};

use super::result::LateEvent;

/// The owner's end of a window operator's late output.
pub(crate) struct LateOut<K: Item, T: Item> {
    side: Side<LateEvent<K, T>>,
}

impl<K: Item, T: Item> LateOut<K, T> {
    pub(crate) fn new() -> Self {
        LateOut {
            side: Side::new("late"),
        }
    }

    pub(crate) fn set_owner(&self, owner: Arc<dyn NodeDyn>) {
        self.side.set_owner(owner);
    }

    /// The side output's node, for `Operator::sides`.
    pub(crate) fn node(&self) -> Arc<dyn NodeDyn> {
        self.side.node()
    }

    pub(crate) fn stream(&self) -> Stream<LateEvent<K, T>> {
        self.side.stream()
    }

    /// Sends one late record (built only when someone listens), or logs it. `count` is the
    /// operator's number of late events so far, this one included.
    pub(crate) fn report(&self, count: u64, cx: &mut Cx, record: impl FnOnce() -> LateEvent<K, T>) {
        if self.side.is_connected() {
            self.side.push(record(), cx);
            return;
        }
        let r = record();
        tracing::debug!(
            ts = r.ts,
            watermark = r.watermark,
            rejected_windows = r.rejected_windows,
            accepted = r.accepted,
            "window: late event"
        );
        if count.is_power_of_two() {
            tracing::warn!(
                late_events = count,
                "window: {count} late event(s) so far with no consumer on the `late` output; \
                 connect `.late()` to keep them (next warning at {})",
                count.saturating_mul(2)
            );
        }
    }

    pub(crate) fn finish(&self, cx: &mut Cx) {
        self.side.finish(cx);
    }
}
