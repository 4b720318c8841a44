//! Preset [`Emitter`]s for [`Stream::batch`](crate::Stream::batch): by count, by fixed time
//! slices, by relaxed time slices.

use super::batch::{BATCH_CAPACITY, Buffered, Emitter, Poll};

/// Ready at `n` items: emits the `n` oldest, in arrival order. With a
/// [`timeout`](CountWindow::timeout), a partial batch is also emitted once its oldest item has
/// waited that long (Streamz's `partition(n, timeout)`). At end of stream the rest is one batch.
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::CountWindow;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let out = source.batch(CountWindow::new(3).timeout(1_000)).sink_to_vec();
/// for x in 0..4 { source.emit(x).await?; }
/// tokio::time::sleep(std::time::Duration::from_millis(1_001)).await;
/// assert_eq!(out.snapshot(), vec![vec![0, 1, 2], vec![3]]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CountWindow {
    n: usize,
    timeout: Option<i64>,
}

impl CountWindow {
    /// Batches of `n` items.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// let _ = brooklet::window::CountWindow::new(100);
    /// ```
    pub fn new(n: usize) -> CountWindow {
        assert!(n > 0, "CountWindow: the batch size must be at least 1");
        CountWindow { n, timeout: None }
    }

    /// Also emit a partial batch when its oldest item has waited `timeout`.
    ///
    /// # Panics
    ///
    /// If `timeout` is not > 0 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// let _ = brooklet::window::CountWindow::new(100).timeout(Duration::from_secs(1));
    /// ```
    pub fn timeout(self, timeout: impl super::IntoMillis) -> CountWindow {
        let ms = timeout.into_millis();
        assert!(ms > 0, "CountWindow: the timeout must be > 0 ms, got {ms}");
        CountWindow {
            timeout: Some(ms),
            ..self
        }
    }
}

impl<T> Emitter<T> for CountWindow {
    fn poll(&mut self, buffer: &[Buffered<T>], now: i64) -> Poll {
        let full = buffer.len() / self.n * self.n;
        let mut batches: Vec<Vec<usize>> = (0..full)
            .step_by(self.n)
            .map(|i| (i..i + self.n).collect())
            .collect();
        let mut wake_at = None;
        if let (Some(t), Some(oldest)) = (self.timeout, buffer.get(full)) {
            let due = oldest.arrived.saturating_add(t);
            if now >= due {
                batches.push((full..buffer.len()).collect());
            } else {
                wake_at = Some(due);
            }
        }
        Poll {
            batches,
            wake_at,
            ..Poll::default()
        }
    }

    /// At least `n`, so that a full batch always fits.
    fn capacity(&self) -> usize {
        self.n.max(BATCH_CAPACITY)
    }
}

/// The start of the slice holding `now`: slices are `origin + k * interval`, or start at
/// `now` itself (the stream start) when there is no origin.
fn align(now: i64, interval: i64, origin: Option<i64>) -> i64 {
    match origin {
        Some(o) => {
            let k = (now as i128 - o as i128).div_euclid(interval as i128);
            (o as i128 + k * interval as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64
        }
        None => now,
    }
}

/// Half-open time slices of `interval`, aligned to the stream start (default), the epoch, or
/// any origin ([`aligned_to`](FixedTimeWindow::aligned_to)). A
/// slice is ready when the clock passes its end; it holds the items created inside it, and is
/// emitted even when empty (unless [`skip_empty`](FixedTimeWindow::skip_empty)). An item
/// created before the current slice is a straggler, sent to the late output. At end of stream
/// what is left is one batch.
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::FixedTimeWindow;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let out = source.batch(FixedTimeWindow::new(1_000)).sink_to_vec();
/// source.emit(1).await?;
/// tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
/// assert_eq!(out.snapshot(), vec![vec![1], vec![]]); // the second slice was empty
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FixedTimeWindow {
    interval: i64,
    origin: Option<i64>,
    emit_empty: bool,
    start: Option<i64>,
    /// How many items at the front of the buffer the last poll kept: they were created in the
    /// current slice or later, so only the items after them can be stragglers.
    kept: usize,
}

impl FixedTimeWindow {
    /// Slices of `interval`.
    ///
    /// # Panics
    ///
    /// If `interval` is not > 0 ms.
    ///
    /// ```
    /// let _ = brooklet::window::FixedTimeWindow::new(std::time::Duration::from_secs(1));
    /// ```
    pub fn new(interval: impl super::IntoMillis) -> FixedTimeWindow {
        let interval = interval.into_millis();
        assert!(
            interval > 0,
            "FixedTimeWindow: the interval must be > 0 ms, got {interval}"
        );
        FixedTimeWindow {
            interval,
            origin: None,
            emit_empty: true,
            start: None,
            kept: 0,
        }
    }

    /// Align slices to the Unix epoch instead of the stream start.
    ///
    /// ```
    /// let _ = brooklet::window::FixedTimeWindow::new(1_000).aligned_to_epoch();
    /// ```
    pub fn aligned_to_epoch(self) -> FixedTimeWindow {
        self.aligned_to(0)
    }

    /// Align slices to `origin` (ms since the epoch): they start at `origin + k * interval`
    /// for every integer `k` (an offset from the epoch, for slices that start at the half
    /// hour, say).
    ///
    /// ```
    /// use brooklet::window::{Buffered, Emitter, FixedTimeWindow};
    /// let mut e = FixedTimeWindow::new(1_000).aligned_to(250);
    /// let buf = vec![Buffered { item: 'a', arrived: 1_300, created: 1_300 }];
    /// assert_eq!(e.poll(&buf, 1_300).wake_at, Some(2_250));
    /// assert_eq!(e.poll(&buf, 2_300).slices, vec![(1_250, 2_250)]);
    /// ```
    pub fn aligned_to(self, origin: i64) -> FixedTimeWindow {
        FixedTimeWindow {
            origin: Some(origin),
            ..self
        }
    }

    /// Do not emit empty slices.
    ///
    /// ```
    /// let _ = brooklet::window::FixedTimeWindow::new(1_000).skip_empty();
    /// ```
    pub fn skip_empty(self) -> FixedTimeWindow {
        FixedTimeWindow {
            emit_empty: false,
            ..self
        }
    }
}

/// Each poll looks at the items that arrived since the last one (for stragglers), and at the
/// whole buffer only when slices end, once, sorting its items into those slices: linear in the
/// number of items. It relies on the node removing exactly the items a poll named, as it does.
impl<T> Emitter<T> for FixedTimeWindow {
    fn poll(&mut self, buffer: &[Buffered<T>], now: i64) -> Poll {
        let interval = self.interval;
        let start = *self
            .start
            .get_or_insert_with(|| align(now, interval, self.origin));
        // Items kept by the last poll were created at or after `start`; newer ones may not be.
        let kept = if self.kept <= buffer.len() {
            self.kept
        } else {
            0
        };
        let stragglers: Vec<usize> = (kept..buffer.len())
            .filter(|&i| buffer[i].created < start)
            .collect();
        let mut batches = Vec::new();
        let mut spans = Vec::new();
        let mut batched = 0;
        let mut next = start;
        if now >= start.saturating_add(interval) {
            let slices = ((now as i128 - start as i128) / interval as i128) as i64;
            next = start.saturating_add(slices.saturating_mul(interval));
            // (slice, index) of every item created in an ended slice, in buffer order.
            let mut ended: Vec<(i64, usize)> = (0..buffer.len())
                .filter_map(|i| {
                    let c = buffer[i].created;
                    (c >= start && c < next)
                        .then(|| (((c as i128 - start as i128) / interval as i128) as i64, i))
                })
                .collect();
            ended.sort_by_key(|e| e.0); // stable: buffer order within a slice
            batched = ended.len();
            let mut ended = ended.into_iter().peekable();
            let span = |k: i64| {
                let b = start.saturating_add(k.saturating_mul(interval));
                (b, b.saturating_add(interval))
            };
            if self.emit_empty {
                for k in 0..slices {
                    let mut batch = Vec::new();
                    while let Some((_, i)) = ended.next_if(|e| e.0 == k) {
                        batch.push(i);
                    }
                    batches.push(batch);
                    spans.push(span(k));
                }
            } else {
                while let Some(&(k, _)) = ended.peek() {
                    let mut batch = Vec::new();
                    while let Some((_, i)) = ended.next_if(|e| e.0 == k) {
                        batch.push(i);
                    }
                    batches.push(batch);
                    spans.push(span(k));
                }
            }
        }
        self.start = Some(next);
        self.kept = buffer.len() - stragglers.len() - batched;
        Poll {
            batches,
            stragglers,
            discard: Vec::new(),
            wake_at: Some(next.saturating_add(interval)),
            slices: spans,
        }
    }
}

/// At each slice end (every `interval`, from the stream start, the epoch or any origin), emits
/// everything buffered so far, stragglers included; an empty buffer emits nothing (Streamz's
/// `timed_window(d)`), or an empty batch per slice with
/// [`emit_empty`](RelaxedTimeWindow::emit_empty).
///
/// ```
/// use brooklet::Source;
/// use brooklet::window::RelaxedTimeWindow;
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), brooklet::Error> {
/// let source = Source::new();
/// let out = source.batch_timed(RelaxedTimeWindow::new(1_000), |_x: &u8| 0).sink_to_vec();
/// source.emit(7).await?; // created long ago: still in the next batch
/// tokio::time::sleep(std::time::Duration::from_millis(1_001)).await;
/// assert_eq!(out.snapshot(), vec![vec![7]]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RelaxedTimeWindow {
    interval: i64,
    origin: Option<i64>,
    emit_empty: bool,
    end: Option<i64>,
}

impl RelaxedTimeWindow {
    /// Slices of `interval`.
    ///
    /// # Panics
    ///
    /// If `interval` is not > 0 ms.
    ///
    /// ```
    /// let _ = brooklet::window::RelaxedTimeWindow::new(500);
    /// ```
    pub fn new(interval: impl super::IntoMillis) -> RelaxedTimeWindow {
        let interval = interval.into_millis();
        assert!(
            interval > 0,
            "RelaxedTimeWindow: the interval must be > 0 ms, got {interval}"
        );
        RelaxedTimeWindow {
            interval,
            origin: None,
            emit_empty: false,
            end: None,
        }
    }

    /// Align slices to the Unix epoch instead of the stream start.
    ///
    /// ```
    /// let _ = brooklet::window::RelaxedTimeWindow::new(1_000).aligned_to_epoch();
    /// ```
    pub fn aligned_to_epoch(self) -> RelaxedTimeWindow {
        self.aligned_to(0)
    }

    /// Align slices to `origin` (ms since the epoch): they end at `origin + k * interval`.
    ///
    /// ```
    /// use brooklet::window::{Buffered, Emitter, RelaxedTimeWindow};
    /// let mut e = RelaxedTimeWindow::new(1_000).aligned_to(100);
    /// let buf: Vec<Buffered<u8>> = Vec::new();
    /// assert_eq!(e.poll(&buf, 450).wake_at, Some(1_100));
    /// ```
    pub fn aligned_to(self, origin: i64) -> RelaxedTimeWindow {
        RelaxedTimeWindow {
            origin: Some(origin),
            ..self
        }
    }

    /// Emit an empty batch for a slice in which nothing arrived (by default such a slice emits
    /// nothing), so that a consumer hears of every slice end.
    ///
    /// ```
    /// use brooklet::window::{Buffered, Emitter, RelaxedTimeWindow};
    /// let mut e = RelaxedTimeWindow::new(1_000).aligned_to_epoch().emit_empty();
    /// let buf: Vec<Buffered<u8>> = Vec::new();
    /// let _ = e.poll(&buf, 0);
    /// let p = e.poll(&buf, 2_000); // two slices ended, both empty
    /// assert_eq!(p.batches, vec![Vec::<usize>::new(), vec![]]);
    /// assert_eq!(p.slices, vec![(0, 1_000), (1_000, 2_000)]);
    /// ```
    pub fn emit_empty(self) -> RelaxedTimeWindow {
        RelaxedTimeWindow {
            emit_empty: true,
            ..self
        }
    }
}

impl<T> Emitter<T> for RelaxedTimeWindow {
    fn poll(&mut self, buffer: &[Buffered<T>], now: i64) -> Poll {
        let interval = self.interval;
        let end = *self
            .end
            .get_or_insert_with(|| align(now, interval, self.origin).saturating_add(interval));
        let mut batches = Vec::new();
        let mut slices = Vec::new();
        if now >= end {
            let ended = (now - end) / interval + 1;
            for k in 0..ended {
                let slice_end = end.saturating_add(k.saturating_mul(interval));
                // Everything buffered goes with the first ended slice; the others are empty.
                let batch: Vec<usize> = if k == 0 {
                    (0..buffer.len()).collect()
                } else {
                    Vec::new()
                };
                if !batch.is_empty() || self.emit_empty {
                    batches.push(batch);
                    slices.push((slice_end.saturating_sub(interval), slice_end));
                }
                if !self.emit_empty && k == 0 {
                    // Without empty batches, the later slices have nothing to say.
                    break;
                }
            }
            self.end = Some(end.saturating_add(ended.saturating_mul(interval)));
        }
        Poll {
            batches,
            wake_at: self.end,
            slices,
            ..Poll::default()
        }
    }
}
