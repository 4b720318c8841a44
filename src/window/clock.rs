//! The event clock and the watermark.
//!
//! Each window operator keeps an event clock (one for the operator by default, as a Flink
//! subtask or Kafka Streams' stream time; one per key with
//! [`per_key_clock`](crate::window::WindowBuilder::per_key_clock), Quix's default):
//!
//! - By default the clock is the largest event timestamp seen so far. Late events never lower
//!   it. With a [maximum future skew](crate::window::WindowBuilder::max_future_skew), an event
//!   more than the skew ahead of the clock is still counted but does not move the clock.
//! - With [explicit watermarks](crate::window::WindowBuilder::explicit_watermarks) only
//!   [`Windowed::advance`](crate::window::Windowed::advance) or an upstream watermark stream
//!   ([`WindowBuilder::watermarks`](crate::window::WindowBuilder::watermarks)) moves it; a
//!   regression is ignored.
//! - An [idle timeout](crate::window::WindowBuilder::idle_timeout) advances it with processing
//!   time when no event arrives, so the last window of a quiet stream is emitted.
//! - **watermark = clock − grace**. A time window `[s, e)` closes when `e <= watermark`.
//! - End of stream sets the clock to +infinity.
//!
//! Invariant: before the end of the stream the watermark stays below `i64::MAX`. A window
//! whose end lies past the `i64` range has its end clamped to `i64::MAX`; a watermark that
//! reached it would close the window on the very event that opened it (an event at
//! `i64::MAX`), and a later event would open it again. Such windows close at the end of the
//! stream only.

/// An event clock: see the module documentation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Meaningful once `set`.
    time: i64,
    /// An event (or an explicit watermark) has moved the clock: `i64::MIN` is a timestamp
    /// like any other, not a marker.
    set: bool,
    infinite: bool,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            time: i64::MIN,
            set: false,
            infinite: false,
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        self.infinite || self.set
    }

    /// An event at `ts` arrived: moves the clock unless explicit, or beyond the skew.
    #[inline]
    pub(crate) fn observe(&mut self, ts: i64, explicit: bool, skew: Option<i64>) {
        if explicit {
            return;
        }
        if let (Some(skew), true) = (skew, self.is_set())
            && ts > self.time.saturating_add(skew)
        {
            return;
        }
        self.advance(ts);
    }

    /// Moves the clock to `t`; a regression is ignored.
    pub(crate) fn advance(&mut self, t: i64) {
        self.time = if self.set { self.time.max(t) } else { t };
        self.set = true;
    }

    /// Moves the clock forward by `ms`, if it was set.
    pub(crate) fn add(&mut self, ms: i64) {
        if self.set {
            self.time = self.time.saturating_add(ms);
        }
    }

    /// Whether the stream has ended (the clock is at +infinity).
    pub(crate) fn is_infinite(&self) -> bool {
        self.infinite
    }

    /// End of stream.
    pub(crate) fn end(&mut self) {
        self.infinite = true;
    }

    /// `clock - grace`, below `i64::MAX` (see the module invariant); `i64::MIN` before the
    /// clock moved, `i64::MAX` after the end.
    pub(crate) fn watermark(&self, grace: i64) -> i64 {
        if self.infinite {
            i64::MAX
        } else if !self.set {
            i64::MIN
        } else {
            self.time.saturating_sub(grace).min(i64::MAX - 1)
        }
    }
}
