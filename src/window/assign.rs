//! Window kinds, durations, and which windows an event belongs to.
//!
//! Every time window is aligned to the Unix epoch plus an optional offset and is half-open,
//! `[start, end)`: an event exactly at `end` belongs to the next window. Arithmetic on window
//! bounds is done in `i128` and clamped to `i64`, so timestamps near `i64::MIN` or `i64::MAX`
//! never overflow or panic (windows at the very edge of the range are clamped).

use std::time::Duration;

/// A duration in whole milliseconds: `i64` milliseconds, or a [`Duration`] rounded to the
/// nearest millisecond (saturating at `i64::MAX`).
///
/// Every window method that takes a duration takes `impl IntoMillis`, so `1_000` and
/// `Duration::from_secs(1)` mean the same thing.
///
/// ```
/// use std::time::Duration;
/// use brooklet::window::IntoMillis;
/// assert_eq!(1_500.into_millis(), 1_500);
/// assert_eq!(Duration::from_micros(1_500).into_millis(), 2); // rounded to the nearest ms
/// ```
pub trait IntoMillis {
    /// The duration in milliseconds.
    fn into_millis(self) -> i64;
}

impl IntoMillis for i64 {
    fn into_millis(self) -> i64 {
        self
    }
}

impl IntoMillis for Duration {
    fn into_millis(self) -> i64 {
        let ms = (self.as_nanos() + 500_000) / 1_000_000;
        i64::try_from(ms).unwrap_or(i64::MAX)
    }
}

/// The shape of a window: see [`Window`].
///
/// ```
/// use brooklet::window::{Window, WindowKind};
/// assert_eq!(Window::hopping(10_000, 1_000).kind(), WindowKind::Hopping { size: 10_000, step: 1_000 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows of `size` ms.
    Tumbling {
        /// Window length in ms.
        size: i64,
    },
    /// Windows of `size` ms starting every `step` ms; an event belongs to every one of them
    /// that contains it.
    Hopping {
        /// Window length in ms.
        size: i64,
        /// Distance between window starts in ms.
        step: i64,
    },
    /// One window `[u - size, u]` (inclusive) per distinct record timestamp `u` of a key.
    Sliding {
        /// Window length in ms.
        size: i64,
    },
    /// Windows of `n` events per key, starting every `step` events.
    Count {
        /// Events per window.
        n: usize,
        /// Events between window starts.
        step: usize,
    },
}

/// Which windows an operator builds: the argument of [`Stream::window`](crate::Stream::window).
///
/// | constructor | an event at `ts` belongs to |
/// |---|---|
/// | [`tumbling(size)`](Window::tumbling) | `[floor(ts / size) * size, + size)` |
/// | [`hopping(size, step)`](Window::hopping) | every `[s, s + size)` with `s` a multiple of `step` and `s <= ts < s + size` |
/// | [`sliding(size)`](Window::sliding) | every `[u - size, u]` (inclusive) where `u` is a record timestamp of the key |
/// | [`count(n)`](Window::count) / [`count_hopping(n, step)`](Window::count_hopping) | event `i` of the key is in the windows starting at `k * step` with `k * step <= i < k * step + n` |
///
/// Starts are aligned to the epoch plus [`offset`](Window::offset). Starts below zero are real
/// windows unless [`WindowBuilder::drop_negative_starts`](crate::window::WindowBuilder::drop_negative_starts)
/// is set.
///
/// ```
/// use brooklet::window::Window;
/// let w = Window::hopping(10_000, 1_000);
/// // An event at 12.5 s falls in the ten windows starting at 3 s, 4 s, ..., 12 s.
/// let starts: Vec<i64> = w.windows_of(12_500).iter().map(|(s, _)| *s).collect();
/// assert_eq!(starts, (3..=12).map(|s| s * 1_000).collect::<Vec<_>>());
/// // Half-open: an event exactly at a window's end goes to the next window.
/// assert_eq!(Window::tumbling(1_000).windows_of(1_000), vec![(1_000, 2_000)]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    kind: WindowKind,
    offset: i64,
}

/// How many windows one event may fall in: `ceil(size / step)`, checked against the limit.
fn windows_per_event(size: i128, step: i128, what: &str) {
    let n = (size + step - 1) / step;
    assert!(
        n <= Window::MAX_WINDOWS_PER_EVENT as i128,
        "window: {what} puts each event in {n} windows, more than the limit of {} \
         (Window::MAX_WINDOWS_PER_EVENT): use a larger step or a smaller size",
        Window::MAX_WINDOWS_PER_EVENT
    );
}

fn positive(what: &str, ms: i64) -> i64 {
    assert!(ms > 0, "window: the {what} must be > 0 ms, got {ms}");
    ms
}

impl Window {
    /// The most windows one event may belong to: `ceil(size / step)` of a hopping window,
    /// `ceil(n / step)` of a hopping count window. Each of them is updated (or, for aggregates
    /// that merge, emitted) per event, so a larger ratio makes one event cost that much time
    /// and memory; the constructors reject it.
    ///
    /// ```
    /// use brooklet::window::Window;
    /// let _ok = Window::hopping(Window::MAX_WINDOWS_PER_EVENT as i64, 1);
    /// assert!(std::panic::catch_unwind(|| Window::hopping(86_400_000, 1)).is_err());
    /// ```
    pub const MAX_WINDOWS_PER_EVENT: u64 = 100_000;

    /// Non-overlapping windows of `size`.
    ///
    /// # Panics
    ///
    /// If `size` is not > 0 ms.
    ///
    /// ```
    /// use brooklet::window::Window;
    /// assert_eq!(Window::tumbling(1_000).windows_of(-1), vec![(-1_000, 0)]);
    /// ```
    pub fn tumbling(size: impl IntoMillis) -> Window {
        let size = positive("size", size.into_millis());
        Window {
            kind: WindowKind::Tumbling { size },
            offset: 0,
        }
    }

    /// Windows of `size` starting every `step`. Each event updates every window it falls in
    /// (`size / step` of them when `step` divides `size`).
    ///
    /// # Panics
    ///
    /// If `size` or `step` is not > 0 ms, `step > size`, or an event would fall in more than
    /// [`MAX_WINDOWS_PER_EVENT`](Window::MAX_WINDOWS_PER_EVENT) windows (`size / step`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use brooklet::window::Window;
    /// let w = Window::hopping(Duration::from_secs(2), Duration::from_millis(500));
    /// assert_eq!(w.windows_of(0).len(), 4);
    /// ```
    pub fn hopping(size: impl IntoMillis, step: impl IntoMillis) -> Window {
        let size = positive("size", size.into_millis());
        let step = positive("step", step.into_millis());
        assert!(
            step <= size,
            "window: hopping step ({step} ms) must not exceed the size ({size} ms)"
        );
        windows_per_event(
            size as i128,
            step as i128,
            &format!("a hopping window of {size} ms every {step} ms"),
        );
        Window {
            kind: WindowKind::Hopping { size, step },
            offset: 0,
        }
    }

    /// Sliding windows (the Kafka Streams definition): one window `[u - size, u]`, inclusive
    /// at both ends, per distinct record timestamp `u` of a key. Results report `start =
    /// u - size` and `end = u` with
    /// [`end_inclusive`](crate::window::WindowResult::end_inclusive) set: the one place where
    /// `end` belongs to the window (tumbling and hopping windows are half-open).
    ///
    /// # Panics
    ///
    /// If `size` is not > 0 ms.
    ///
    /// ```
    /// use brooklet::window::{Window, WindowKind};
    /// assert_eq!(Window::sliding(5_000).kind(), WindowKind::Sliding { size: 5_000 });
    /// ```
    pub fn sliding(size: impl IntoMillis) -> Window {
        let size = positive("size", size.into_millis());
        Window {
            kind: WindowKind::Sliding { size },
            offset: 0,
        }
    }

    /// Tumbling count windows: every `n` events of a key form a window.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// ```
    /// use brooklet::window::{Window, WindowKind};
    /// assert_eq!(Window::count(3).kind(), WindowKind::Count { n: 3, step: 3 });
    /// ```
    pub fn count(n: usize) -> Window {
        Window::count_hopping(n, n)
    }

    /// Hopping count windows: windows of `n` events of a key, one starting every `step`
    /// events.
    ///
    /// # Panics
    ///
    /// If `n` or `step` is 0, `step > n`, or an event would fall in more than
    /// [`MAX_WINDOWS_PER_EVENT`](Window::MAX_WINDOWS_PER_EVENT) windows (`n / step`).
    ///
    /// ```
    /// use brooklet::window::{Window, WindowKind};
    /// assert_eq!(Window::count_hopping(4, 2).kind(), WindowKind::Count { n: 4, step: 2 });
    /// ```
    pub fn count_hopping(n: usize, step: usize) -> Window {
        assert!(n > 0, "window: a count window must hold at least 1 event");
        assert!(step > 0, "window: the count step must be at least 1 event");
        assert!(
            step <= n,
            "window: count step ({step}) must not exceed the window size ({n})"
        );
        windows_per_event(
            n as i128,
            step as i128,
            &format!("a count window of {n} events every {step}"),
        );
        Window {
            kind: WindowKind::Count { n, step },
            offset: 0,
        }
    }

    /// Shifts the alignment of time windows: starts are `offset + k * step` instead of
    /// `k * step`. Ignored by sliding and count windows.
    ///
    /// ```
    /// use brooklet::window::Window;
    /// let w = Window::tumbling(1_000).offset(250);
    /// assert_eq!(w.windows_of(1_100), vec![(250, 1_250)]);
    /// ```
    pub fn offset(self, offset: impl IntoMillis) -> Window {
        Window {
            offset: offset.into_millis(),
            ..self
        }
    }

    /// The window's shape.
    ///
    /// ```
    /// use brooklet::window::{Window, WindowKind};
    /// assert_eq!(Window::tumbling(10).kind(), WindowKind::Tumbling { size: 10 });
    /// ```
    pub fn kind(&self) -> WindowKind {
        self.kind
    }

    /// The `[start, end)` bounds of the tumbling or hopping windows an event at `ts` belongs
    /// to, in ascending start. Empty for sliding and count windows, whose membership depends
    /// on the other events.
    ///
    /// ```
    /// use brooklet::window::Window;
    /// assert_eq!(Window::hopping(10, 5).windows_of(7), vec![(0, 10), (5, 15)]);
    /// ```
    pub fn windows_of(&self, ts: i64) -> Vec<(i64, i64)> {
        match self.geometry(false) {
            Some(g) => {
                let (lo, hi) = g.containing(ts);
                g.starts(lo, hi).map(|s| (clamp(s), g.end(s))).collect()
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn geometry(&self, drop_negative: bool) -> Option<Geometry> {
        let (size, step) = match self.kind {
            WindowKind::Tumbling { size } => (size, size),
            WindowKind::Hopping { size, step } => (size, step),
            WindowKind::Sliding { size } => (size, 1),
            WindowKind::Count { .. } => return None,
        };
        Some(Geometry {
            size,
            step,
            pane: gcd(size, step),
            offset: self.offset,
            drop_negative,
            whole_steps: size % step == 0,
            per_event: (size / step) as u64,
        })
    }
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `floor(a / b)` for `b > 0`; in `i64` when `a` fits (the common case: `i128` division is slow).
#[inline]
fn div_floor(a: i128, b: i64) -> i128 {
    match i64::try_from(a) {
        Ok(a) => a.div_euclid(b) as i128,
        Err(_) => a.div_euclid(b as i128),
    }
}

/// Clamps an `i128` to the `i64` range.
#[inline]
pub(crate) fn clamp(x: i128) -> i64 {
    x.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Window arithmetic of a tumbling or hopping operator, in `i128` so nothing overflows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) size: i64,
    pub(crate) step: i64,
    /// The pane width: `gcd(size, step)`. Every window is a whole number of panes.
    pub(crate) pane: i64,
    pub(crate) offset: i64,
    pub(crate) drop_negative: bool,
    /// `size` is a multiple of `step`.
    pub(crate) whole_steps: bool,
    /// `size / step`.
    pub(crate) per_event: u64,
}

impl Geometry {
    /// How many windows hold an event whose windows are all open: `size / step` when that is
    /// exact and no start is dropped, else counted from the bounds.
    #[inline]
    pub(crate) fn all_count(&self, lo: i128, hi: i128) -> u64 {
        if self.whole_steps && !self.drop_negative {
            self.per_event
        } else {
            self.count(lo, hi)
        }
    }
}

impl Geometry {
    #[inline(always)]
    fn floor_to(&self, x: i128, unit: i64) -> i128 {
        // In i64 when `x - offset` fits (every timestamp but those near the i64 edges).
        if let Ok(x) = i64::try_from(x)
            && let Some(d) = x.checked_sub(self.offset)
        {
            return x as i128 - d.rem_euclid(unit) as i128;
        }
        let o = self.offset as i128;
        o + div_floor(x - o, unit) * unit as i128
    }

    /// The smallest window start `>= x`.
    #[inline]
    pub(crate) fn ceil_start(&self, x: i128) -> i128 {
        let f = self.floor_to(x, self.step);
        if f == x { f } else { f + self.step as i128 }
    }

    /// The start of the pane holding `ts`.
    #[inline]
    pub(crate) fn pane_of(&self, ts: i64) -> i64 {
        clamp(self.floor_to(ts as i128, self.pane))
    }

    /// The lowest start a window may have (0 when negative starts are dropped).
    pub(crate) fn min_start(&self) -> i128 {
        if self.drop_negative {
            self.ceil_start(0)
        } else {
            i128::MIN / 4
        }
    }

    /// The last start of the windows holding `ts` when every one of them is open under `wm`
    /// and the arithmetic fits in `i64` (the size a whole number of steps, no dropped starts):
    /// the common case, with no `i128` and no rejection to count. `None` otherwise, for the
    /// general path ([`containing`](Self::containing)).
    #[inline(always)]
    pub(crate) fn last_start_if_open(&self, ts: i64, wm: i64) -> Option<i64> {
        if !self.whole_steps || self.drop_negative {
            return None;
        }
        let hi = ts.checked_sub(ts.checked_sub(self.offset)?.rem_euclid(self.step))?;
        // The first window holding `ts` starts at `hi - (size - step)` and ends at `hi + step`.
        (hi.checked_add(self.step)? > wm).then_some(hi)
    }

    /// First and last start (inclusive) of the windows holding `ts`; `lo > hi` when none.
    #[inline]
    pub(crate) fn containing(&self, ts: i64) -> (i128, i128) {
        // The common case in i64, inlined into the stores: size a whole number of steps, no
        // lower bound on starts, `ts - offset` representable.
        if self.whole_steps
            && !self.drop_negative
            && let Some(d) = ts.checked_sub(self.offset)
        {
            let hi = ts as i128 - d.rem_euclid(self.step) as i128;
            return (hi - (self.size - self.step) as i128, hi);
        }
        self.containing_exact(ts)
    }

    #[inline(never)]
    fn containing_exact(&self, ts: i64) -> (i128, i128) {
        let hi = self.floor_to(ts as i128, self.step);
        // When the size is a whole number of steps (tumbling, and most hopping shapes) the
        // first start is a fixed distance below the last: one division instead of two.
        let first = if self.whole_steps {
            hi - (self.size - self.step) as i128
        } else {
            self.ceil_start(ts as i128 - self.size as i128 + 1)
        };
        (first.max(self.min_start()), hi)
    }

    /// Whether the first window holding an event at `ts` whose first start is `lo` (from
    /// [`containing`](Self::containing)) is still open under `wm`; then every window holding it
    /// is, as they end later.
    #[inline]
    pub(crate) fn all_open(&self, lo: i128, wm: i64) -> bool {
        lo + self.size as i128 > wm as i128
    }

    /// The first start of a window still open under watermark `wm` (`start + size > wm`).
    #[inline]
    pub(crate) fn first_open(&self, wm: i64) -> i128 {
        self.ceil_start(wm as i128 - self.size as i128 + 1)
    }

    /// Starts from `lo` to `hi` inclusive.
    pub(crate) fn starts(&self, lo: i128, hi: i128) -> impl Iterator<Item = i128> + use<> {
        let step = self.step as i128;
        let n = self.count(lo, hi) as i128;
        (0..n).map(move |k| lo + k * step)
    }

    /// Number of starts from `lo` to `hi` inclusive.
    #[inline]
    pub(crate) fn count(&self, lo: i128, hi: i128) -> u64 {
        if hi > lo {
            u64::try_from(div_floor(hi - lo, self.step) + 1).unwrap_or(u64::MAX)
        } else {
            (hi == lo) as u64
        }
    }

    /// The end of the window starting at `s`, clamped.
    #[inline]
    pub(crate) fn end(&self, s: i128) -> i64 {
        clamp(s + self.size as i128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `i64` fast path agrees with the general one wherever it answers, edges included.
    #[test]
    fn window_fast_path_agrees_with_the_general_one() {
        let mut x = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let edges = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        let shapes = [
            Window::tumbling(1_000),
            Window::hopping(10_000, 1_000),
            Window::hopping(10, 5),
            Window::hopping(7, 3),
            Window::tumbling(1_000).offset(250),
            Window::tumbling(3).offset(i64::MIN),
            Window::hopping(i64::MAX, i64::MAX / 2),
        ];
        let (mut answered, mut declined) = (0, 0);
        for w in shapes {
            for drop_negative in [false, true] {
                let g = w.geometry(drop_negative).expect("a time window");
                for i in 0..2_000 {
                    let pick = |r: u64| {
                        if r.is_multiple_of(4) {
                            edges[(r / 4) as usize % edges.len()]
                        } else {
                            (r as i64) >> (r % 50)
                        }
                    };
                    let ts = pick(next());
                    let wm = if i % 2 == 0 {
                        pick(next())
                    } else {
                        ts.saturating_sub(1_000)
                    };
                    let (lo, hi) = g.containing(ts);
                    match g.last_start_if_open(ts, wm) {
                        Some(last) => {
                            answered += 1;
                            assert_eq!(last as i128, hi, "{w:?} ts {ts}");
                            assert!(lo <= hi && g.all_open(lo, wm), "{w:?} ts {ts} wm {wm}");
                        }
                        None => {
                            declined += 1;
                            // Declined only off the fast path's shape, at the edges, or when
                            // a window holding the event is closed.
                            assert!(
                                !g.whole_steps
                                    || drop_negative
                                    || lo > hi
                                    || !g.all_open(lo, wm)
                                    || hi < i64::MIN as i128
                                    || hi + g.step as i128 > i64::MAX as i128
                                    || i64::try_from(ts as i128 - g.offset as i128).is_err(),
                                "{w:?} ts {ts} wm {wm}"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            answered > 1_000 && declined > 1_000,
            "{answered} / {declined}"
        );
    }
}
