//! What window operators emit: results, late-event records and counters.

/// One closed (or, in current mode, updated) window of one key.
///
/// Tumbling, hopping and processing-time windows are half-open, `[start, end)` in ms, and
/// report `end_inclusive: false`. The two kinds whose bounds are both inclusive say so with
/// `end_inclusive: true`: a sliding window `[u - size, u]` (the Kafka Streams and Quix Streams
/// definition: `end` is `u`, the timestamp of the record that defined it), and a count window,
/// which reports the smallest and largest event timestamps it holds (or event indexes when no
/// timestamp extractor was given). [`timestamp`](WindowResult::timestamp) gives the last ms
/// in the window either way, so results can feed a window downstream.
///
/// ```
/// use brooklet::window::WindowResult;
/// let r = WindowResult { key: "a", start: 0, end: 1_000, end_inclusive: false, value: 3 };
/// assert_eq!(r.timestamp(), 999); // results can feed a larger window downstream
/// let s = WindowResult { key: "a", start: 0, end: 1_000, end_inclusive: true, value: 3 };
/// assert_eq!(s.timestamp(), 1_000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowResult<K, V> {
    /// The key (`()` for an unkeyed stream).
    pub key: K,
    /// First ms of the window.
    pub start: i64,
    /// First ms after the window, or, when `end_inclusive`, its last ms.
    pub end: i64,
    /// Whether `end` belongs to the window: `true` for sliding and count windows, `false`
    /// for the half-open kinds.
    pub end_inclusive: bool,
    /// The aggregate.
    pub value: V,
}

impl<K, V> WindowResult<K, V> {
    /// The result's own event time: the last ms of the window (`end - 1` for a half-open
    /// window, `end` when `end_inclusive`).
    ///
    /// ```
    /// use brooklet::window::WindowResult;
    /// let r = WindowResult { key: (), start: 10, end: 20, end_inclusive: false, value: 0.5 };
    /// assert_eq!(r.timestamp(), 19);
    /// ```
    pub fn timestamp(&self) -> i64 {
        if self.end_inclusive {
            self.end
        } else {
            self.end.saturating_sub(1)
        }
    }
}

/// The record sent to a window operator's [`late`](crate::window::Windowed::late) output for
/// each event that at least one closed window rejected (one record per event).
///
/// ```
/// use brooklet::window::LateEvent;
/// let late = LateEvent {
///     key: (), ts: 500, value: 7, watermark: 2_000, lateness: 1_500,
///     rejected: vec![(0, 1_000)], rejected_windows: 1, accepted: 0,
/// };
/// assert!(late.is_fully_late());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateEvent<K, T> {
    /// The event's key.
    pub key: K,
    /// The event's timestamp.
    pub ts: i64,
    /// The event itself.
    pub value: T,
    /// The watermark (of the key, with a per-key clock) when the event arrived.
    pub watermark: i64,
    /// How late the event is: `watermark - ts` (always > 0).
    pub lateness: i64,
    /// The rejected windows as `(start, end)`, ascending, with the bounds their results would
    /// have had; at most 1024 are listed. For sliding windows this is the event's own window
    /// `(ts - size, ts)`, both ends inclusive.
    pub rejected: Vec<(i64, i64)>,
    /// How many windows rejected the event.
    pub rejected_windows: u64,
    /// How many (still open) windows accepted it.
    pub accepted: u64,
}

impl<K, T> LateEvent<K, T> {
    /// Whether no window accepted the event.
    ///
    /// ```
    /// use brooklet::window::LateEvent;
    /// let late = LateEvent { key: 1, ts: 5, value: (), watermark: 10, lateness: 5,
    ///     rejected: vec![(0, 10)], rejected_windows: 1, accepted: 1 };
    /// assert!(!late.is_fully_late());
    /// ```
    pub fn is_fully_late(&self) -> bool {
        self.accepted == 0
    }
}

/// Counters of a window operator, read with [`Windowed::stats`](crate::window::Windowed::stats).
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::{Window, WindowStats};
/// let s = WindowStats::default();
/// assert_eq!((s.events, s.late_events, s.watermark), (0, 0, None));
/// # futures::executor::block_on(async {
/// let source = Source::new();
/// let w = source.window(Window::tumbling(10)).timestamp(|e: &(u32, i64)| e.1).key_by(|e| e.0).count();
/// for session in 0..100 {
///     source.emit((session, 10 * session as i64)).await?;
/// }
/// // Each session closed the window of the one before: only the last one is held.
/// assert_eq!((w.stats().keys, w.stats().held, w.stats().results), (1, 1, 99));
/// # Ok::<(), brooklet::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowStats {
    /// Events received.
    pub events: u64,
    /// Events rejected by at least one window.
    pub late_events: u64,
    /// Windows that rejected an event (summed over late events).
    pub rejected_windows: u64,
    /// Results emitted.
    pub results: u64,
    /// Open windows, panes or buffered records held right now.
    pub held: u64,
    /// Keys with state held right now: open windows, panes or records. A key whose windows
    /// have all closed, and that holds nothing else, is freed.
    pub keys: u64,
    /// Freed keys that still keep one small entry: their clock, with a
    /// [per-key clock](crate::window::WindowBuilder::per_key_clock) (so their late events are
    /// still recognised), or their event count, for count windows without a timestamp
    /// extractor (so their event indexes go on). Always 0 otherwise.
    pub retired_keys: u64,
    /// The operator's watermark (`None` before the clock first moves; the largest key
    /// watermark with a per-key clock).
    pub watermark: Option<i64>,
}
