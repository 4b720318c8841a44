//! Every window rule written down in `brooklet::window` ("Time and window semantics"), with
//! hand-derived expectations.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::window::{
    EmitMode, LateEvent, Leftover, Window, WindowBuilder, WindowResult, WindowStats, Windowed,
    aggregate::{collect, count, first, last, max, mean, min, reduce, sum},
};
use brooklet::{Ack, Source};
use futures::executor::block_on;

type E = (&'static str, i64, i64); // (key, ts, value)

/// A half-open window's result: `[start, end)`.
fn wr<K, V>(key: K, start: i64, end: i64, value: V) -> WindowResult<K, V> {
    WindowResult {
        key,
        start,
        end,
        end_inclusive: false,
        value,
    }
}

/// A sliding or count window's result: `[start, end]`, both ends inclusive.
fn wri<K, V>(key: K, start: i64, end: i64, value: V) -> WindowResult<K, V> {
    WindowResult {
        key,
        start,
        end,
        end_inclusive: true,
        value,
    }
}

async fn feed(source: &Source<E>, events: &[E]) {
    for e in events {
        source.emit(*e).await.unwrap();
    }
}

// ---------------------------------------------------------------- tumbling

#[test]
fn tumbling_sums_with_half_open_boundaries() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(1_000))
            .timestamp(|e| e.1)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 100, 1), ("a", 900, 2)]).await;
        assert!(
            out.snapshot().is_empty(),
            "[0, 1000) still open at watermark 900"
        );
        // Exactly at the end: belongs to [1000, 2000), and closes [0, 1000) (end <= watermark).
        feed(&source, &[("a", 1_000, 4)]).await;
        assert_eq!(out.snapshot(), vec![wr((), 0, 1_000, 3)]);
        feed(&source, &[("a", 2_500, 8)]).await;
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![
                wr((), 0, 1_000, 3),
                wr((), 1_000, 2_000, 4),
                wr((), 2_000, 3_000, 8)
            ]
        );
    });
}

#[test]
fn empty_windows_are_never_emitted() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .count()
            .sink_to_vec();
        feed(&source, &[("a", 1, 0), ("a", 95, 0)]).await;
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1), wr((), 90, 100, 1)]);
    });
}

#[test]
fn negative_timestamps_make_negative_windows() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(1_000))
            .timestamp(|e| e.1)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", -1, 5), ("a", -1_000, 6), ("a", -1_001, 7)]).await;
        source.close().await.unwrap();
        // -1_001 arrived after the clock reached -1: [-2000, -1000) ends at -1000 <= -1, late.
        assert_eq!(out.snapshot(), vec![wr((), -1_000, 0, 11)]);
    });
}

#[test]
fn drop_negative_starts_option() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .drop_negative_starts()
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", -3, 100), ("a", 1, 1), ("a", 7, 2)]).await;
        source.close().await.unwrap();
        // -3 is only in [-10, 0) and [-5, 5): dropped windows, so ignored (not late).
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 3), wr((), 5, 15, 2)]);
        assert!(late.snapshot().is_empty());
    });
}

#[test]
fn offset_shifts_alignment() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(10).offset(3))
            .timestamp(|e| e.1)
            .count()
            .sink_to_vec();
        feed(&source, &[("a", 2, 0), ("a", 3, 0), ("a", 12, 0)]).await;
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), -7, 3, 1), wr((), 3, 13, 2)]);
    });
}

// ---------------------------------------------------------------- hopping

#[test]
fn hopping_10s_every_1s_updates_every_window() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::hopping(10_000, 1_000))
            .timestamp(|e| e.1)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 500, 1), ("a", 2_500, 10)]).await;
        // Watermark 2500: windows ending at or before 2500 close: starts -9000..=-8000 hold
        // only the event at 500.
        assert_eq!(
            out.snapshot(),
            vec![wr((), -9_000, 1_000, 1), wr((), -8_000, 2_000, 1)]
        );
        feed(&source, &[("a", 12_500, 100)]).await;
        source.close().await.unwrap();
        let mut expected = vec![];
        // 500 is in starts -9000..=0; 2500 in -7000..=2000; 12500 in 3000..=12000.
        for s in (-9_000..=12_000).step_by(1_000) {
            let mut v = 0;
            for (ts, x) in [(500, 1), (2_500, 10), (12_500, 100)] {
                if s <= ts && ts < s + 10_000 {
                    v += x;
                }
            }
            if v > 0 {
                expected.push(wr((), s, s + 10_000, v));
            }
        }
        // Hand check of a few: [-7000, 3000) = 11; [0, 10000) = 11; [1000, 11000) = 10;
        // [3000, 13000) = 100.
        assert!(expected.contains(&wr((), -7_000, 3_000, 11)));
        assert!(expected.contains(&wr((), 0, 10_000, 11)));
        assert!(expected.contains(&wr((), 1_000, 11_000, 10)));
        assert!(expected.contains(&wr((), 3_000, 13_000, 100)));
        assert_eq!(expected.len(), 22);
        assert_eq!(out.snapshot(), expected);
    });
}

#[test]
fn hopping_step_not_dividing_size() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::hopping(10, 4))
            .timestamp(|e| e.1)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 9, 1), ("a", 10, 2)]).await;
        source.close().await.unwrap();
        // 9 is in [0,10) [4,14) [8,18); 10 is in [4,14) [8,18).
        assert_eq!(
            out.snapshot(),
            vec![wr((), 0, 10, 1), wr((), 4, 14, 3), wr((), 8, 18, 3)]
        );
    });
}

#[test]
fn hopping_non_mergeable_aggregate_matches_panes() {
    block_on(async {
        let source = Source::<E>::new();
        let w = Window::hopping(30, 10);
        let panes = source
            .window(w)
            .timestamp(|e| e.1)
            .collect(|e| e.2)
            .sink_to_vec();
        let per_window = source
            .window(w)
            .timestamp(|e| e.1)
            .reduce(Vec::new(), |mut v, e| {
                v.push(e.2);
                v
            })
            .sink_to_vec();
        feed(
            &source,
            &[("a", 5, 1), ("a", 25, 2), ("a", 15, 3), ("a", 41, 4)],
        )
        .await;
        source.close().await.unwrap();
        // collect orders by event time; reduce by arrival.
        let by_time: Vec<_> = panes
            .snapshot()
            .into_iter()
            .map(|w| (w.start, w.value))
            .collect();
        assert_eq!(
            by_time,
            vec![
                (-20, vec![1]),
                (-10, vec![1]), // 15 arrived at watermark 25: late for [-10, 20)
                (0, vec![1, 3, 2]),
                (10, vec![3, 2]),
                (20, vec![2, 4]),
                (30, vec![4]),
                (40, vec![4]),
            ]
        );
        let mut sorted: Vec<_> = by_time;
        sorted.iter_mut().for_each(|(_, v)| v.sort());
        let mut by_arrival: Vec<_> = per_window
            .snapshot()
            .into_iter()
            .map(|w| (w.start, w.value))
            .collect();
        by_arrival.iter_mut().for_each(|(_, v)| v.sort());
        assert_eq!(sorted, by_arrival);
    });
}

// ---------------------------------------------------------------- grace and late

#[test]
fn out_of_order_within_grace_then_late_beyond_grace() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(1_000))
            .timestamp(|e| e.1)
            .grace(500)
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", 100, 1), ("a", 1_200, 2)]).await; // watermark 700
        feed(&source, &[("a", 800, 4)]).await; // out of order, within grace
        assert!(out.snapshot().is_empty());
        feed(&source, &[("a", 1_600, 8)]).await; // watermark 1100 closes [0, 1000)
        assert_eq!(out.snapshot(), vec![wr((), 0, 1_000, 5)]);
        feed(&source, &[("a", 900, 16)]).await; // beyond grace: late
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![wr((), 0, 1_000, 5), wr((), 1_000, 2_000, 10)]
        );
        assert_eq!(
            late.snapshot(),
            vec![LateEvent {
                key: (),
                ts: 900,
                value: ("a", 900, 16),
                watermark: 1_100,
                lateness: 200,
                rejected: vec![(0, 1_000)],
                rejected_windows: 1,
                accepted: 0,
            }]
        );
        let stats = w.stats();
        assert_eq!(
            (stats.events, stats.late_events, stats.rejected_windows),
            (5, 1, 1)
        );
    });
}

#[test]
fn late_record_for_partially_late_hopping_event() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("k", 12, 1), ("k", 6, 2)]).await;
        // Watermark 12: [0, 10) is closed and rejects 6; [5, 15) accepts it.
        assert_eq!(
            late.snapshot(),
            vec![LateEvent {
                key: "k",
                ts: 6,
                value: ("k", 6, 2),
                watermark: 12,
                lateness: 6,
                rejected: vec![(0, 10)],
                rejected_windows: 1,
                accepted: 1,
            }]
        );
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![wr("k", 5, 15, 3), wr("k", 10, 20, 1)]);
        // [0, 10) was never emitted: it was empty when it closed, and is never reopened.
        assert_eq!(w.stats().rejected_windows, 1);
    });
}

#[test]
fn closed_window_is_never_reopened_or_emitted_twice() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .count();
        let out = w.sink_to_vec();
        feed(
            &source,
            &[("a", 1, 0), ("a", 10, 0), ("a", 2, 0), ("a", 3, 0)],
        )
        .await;
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1), wr((), 10, 20, 1)]);
        assert_eq!(w.stats().late_events, 2);
    });
}

#[test]
fn late_events_without_consumer_are_counted() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .count();
        for i in 0..1_000 {
            source.emit(("a", 100 - i % 50, 0)).await.unwrap();
        }
        assert!(w.stats().late_events > 900);
    });
}

// ---------------------------------------------------------------- keys and order

#[test]
fn several_keys_emit_in_first_appearance_order() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(
            &source,
            &[("b", 1, 1), ("a", 2, 2), ("b", 3, 4), ("a", 15, 8)],
        )
        .await;
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![wr("b", 0, 10, 5), wr("a", 0, 10, 2), wr("a", 10, 20, 8)]
        );
    });
}

#[test]
fn windows_closing_together_come_out_by_end_then_start_then_key() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .grace(100)
            .count()
            .sink_to_vec();
        feed(&source, &[("b", 7, 0), ("a", 3, 0), ("c", 200, 0)]).await;
        // Watermark 100 closes everything of a and b at once.
        assert_eq!(
            out.snapshot(),
            vec![
                wr("a", -5, 5, 1),
                wr("b", 0, 10, 1),
                wr("a", 0, 10, 1),
                wr("b", 5, 15, 1)
            ]
        );
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot()[4..],
            [wr("c", 195, 205, 1), wr("c", 200, 210, 1)]
        );
    });
}

#[test]
fn none_is_a_normal_key() {
    block_on(async {
        let source = Source::<(Option<u8>, i64)>::new();
        let out = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .count()
            .sink_to_vec();
        for e in [(None, 1), (Some(1), 2), (None, 3)] {
            source.emit(e).await.unwrap();
        }
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![wr(None, 0, 10, 2), wr(Some(1), 0, 10, 1)]
        );
    });
}

#[test]
fn per_key_clock() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .per_key_clock()
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", 1, 1), ("b", 25, 2), ("a", 5, 4)]).await;
        // b's clock does not move a's: 5 is on time for a.
        assert!(out.snapshot().is_empty());
        feed(&source, &[("a", 12, 8)]).await;
        assert_eq!(out.snapshot(), vec![wr("a", 0, 10, 5)]);
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![wr("a", 0, 10, 5), wr("a", 10, 20, 8), wr("b", 20, 30, 2)]
        );
        assert!(late.snapshot().is_empty());
    });
}

#[test]
fn shared_clock_is_the_default() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .sum(|e| e.2);
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", 1, 1), ("b", 25, 2), ("a", 5, 4)]).await;
        assert_eq!(
            late.snapshot().len(),
            1,
            "b moved the operator clock past a's window"
        );
    });
}

/// Each event opens a window before the key's earliest one, so the key's next closing moves
/// earlier 300 times, for each of three keys: every window still closes exactly once, in
/// `(end, start)` order and, within a window, in the order its keys first appeared.
#[test]
fn closings_that_keep_moving_earlier_still_come_out_once_each_in_order() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .grace(1_000_000)
            .key_by(|e| e.0)
            .count()
            .sink_to_vec();
        for i in (0..300).rev() {
            for key in ["a", "b", "c"] {
                source.emit((key, 1_000_000 + i * 10, 1)).await.unwrap();
            }
        }
        assert!(out.snapshot().is_empty(), "nothing is due under the grace");
        source.close().await.unwrap();
        let expected: Vec<_> = (0..300)
            .flat_map(|i| {
                let start = 1_000_000 + i * 10;
                ["a", "b", "c"].map(|k| wr(k, start, start + 10, 1u64))
            })
            .collect();
        assert_eq!(out.snapshot(), expected);
    });
}

// ---------------------------------------------------------------- key state is freed

/// (session id, ts, value): a stream whose set of keys keeps growing.
type S = (u64, i64, i64);

/// Session `i` of `0..n` sends `per_key` events at `100 * i`; each session closes every
/// window of the sessions before it. Returns `(stats, metrics().held)`.
async fn sessions<V: brooklet::Item>(
    source: &Source<S>,
    w: &Windowed<S, u64, V>,
    n: u64,
    per_key: usize,
) -> (WindowStats, u64) {
    for i in 0..n {
        for _ in 0..per_key {
            source.emit((i, 100 * i as i64, 1)).await.unwrap();
        }
    }
    (w.stats(), w.metrics().held)
}

fn sessions_window(source: &Source<S>, window: Window) -> WindowBuilder<S, u64> {
    source.window(window).timestamp(|e| e.1).key_by(|e| e.0)
}

#[test]
fn closed_keys_are_freed_and_held_state_stays_bounded() {
    block_on(async {
        const N: u64 = 10_000;
        // Tumbling: only the last session has an open window.
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::tumbling(10)).count();
        let out = w.sink_to_vec();
        let (st, held) = sessions(&source, &w, N, 1).await;
        assert_eq!((st.keys, st.retired_keys, st.held, held), (1, 0, 1, 1));
        assert_eq!(out.len(), N as usize - 1);
        source.close().await.unwrap();
        assert_eq!(
            (w.stats().keys, w.stats().held, out.len()),
            (0, 0, N as usize)
        );

        // Hopping, per pane: the last session holds one pane.
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::hopping(20, 5)).count();
        let out = w.sink_to_vec();
        let (st, held) = sessions(&source, &w, N, 1).await;
        assert_eq!((st.keys, st.retired_keys, st.held, held), (1, 0, 1, 1));
        assert_eq!(out.len(), 4 * (N as usize - 1));

        // Hopping with an aggregate that cannot merge: one accumulator per window.
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::hopping(20, 5)).reduce(0, |n, _| n + 1);
        let (st, held) = sessions(&source, &w, N, 1).await;
        assert_eq!((st.keys, st.retired_keys, st.held, held), (1, 0, 4, 4));

        // Sliding: records outlive their windows by `size`, then expire without new events
        // of their key; the last session holds its window and its record.
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::sliding(10)).count();
        let (st, held) = sessions(&source, &w, N, 1).await;
        assert_eq!((st.keys, st.retired_keys, st.held, held), (1, 0, 2, 2));

        // Count windows: a key with no partial window is freed; partial windows are kept.
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::count(2)).count();
        let (st, held) = sessions(&source, &w, N, 2).await;
        assert_eq!((st.keys, st.retired_keys, st.held, held), (0, 0, 0, 0));
        let (st, held) = sessions(&source, &w, 3, 1).await;
        assert_eq!((st.keys, st.held, held), (3, 3, 3));
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::count_hopping(2, 1)).count();
        let (st, _) = sessions(&source, &w, 100, 2).await;
        assert_eq!((st.keys, st.held), (100, 100)); // each holds its partial window
    });
}

#[test]
fn sliding_records_of_a_quiet_key_expire() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .grace(5)
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        // b at 10 is late for its own window (10 + 1 <= 20 - 5) but not fully late: its record
        // is kept for windows still to open, so b holds state with no window.
        feed(&source, &[("a", 20, 1), ("b", 10, 2)]).await;
        assert_eq!((w.stats().keys, w.stats().held), (2, 3));
        // Watermark 20: 10 + 10 + 1 > 20, b's record may still be needed.
        feed(&source, &[("a", 25, 1)]).await;
        assert_eq!((w.stats().keys, w.stats().held), (2, 5));
        // Watermark 21: b's record expires; a's window u = 20 closes.
        feed(&source, &[("a", 26, 1)]).await;
        assert_eq!(w.stats().keys, 1);
        // b comes back as a fresh key would: at 16 it is late (17 <= 21), at 22 its window
        // [12, 22] opens (the expired record could not be in it).
        feed(&source, &[("b", 16, 4), ("b", 22, 8)]).await;
        assert_eq!(w.stats().late_events, 2);
        source.close().await.unwrap();
        let b: Vec<_> = out
            .snapshot()
            .into_iter()
            .filter(|r| r.key == "b")
            .collect();
        assert_eq!(b, vec![wri("b", 12, 22, 12)]);
        assert_eq!((w.stats().keys, w.stats().held), (0, 0));
    });
}

#[test]
fn a_freed_key_comes_back_as_a_fresh_key() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .grace(5)
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", 1, 1), ("b", 15, 2)]).await; // watermark 10: a's [0, 10) closes
        assert_eq!(out.snapshot(), vec![wr("a", 0, 10, 1)]);
        assert_eq!(w.stats().keys, 1, "a is freed");
        // a (freed) and c (never seen) do exactly the same things.
        feed(
            &source,
            &[("a", 8, 4), ("c", 8, 4), ("a", 12, 8), ("c", 12, 8)],
        )
        .await;
        let l = late.snapshot();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].key, l[0].rejected.clone()), ("a", vec![(0, 10)]));
        assert_eq!((l[1].key, l[1].rejected.clone()), ("c", vec![(0, 10)]));
        assert_eq!(w.stats().keys, 3);
        feed(&source, &[("b", 30, 0)]).await; // watermark 25
        assert_eq!(
            out.snapshot(),
            vec![
                wr("a", 0, 10, 1),
                wr("b", 10, 20, 2),
                wr("a", 10, 20, 8),
                wr("c", 10, 20, 8),
            ]
        );
        assert_eq!((w.stats().keys, w.stats().retired_keys), (1, 0));
    });
}

#[test]
fn per_key_clock_survives_a_freed_key() {
    block_on(async {
        let source = Source::<S>::new();
        let w = sessions_window(&source, Window::tumbling(10))
            .per_key_clock()
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        for i in 0..1_000u64 {
            source.emit((i, 1_000 + i as i64, 1)).await.unwrap();
        }
        assert_eq!(w.stats().keys, 1_000);
        // Each key's own clock moves to 2_000: every window closes, every key is freed, and
        // only its clock is kept.
        w.advance(2_000).await.unwrap();
        let st = w.stats();
        assert_eq!(
            (st.keys, st.retired_keys, st.held, out.len()),
            (0, 1_000, 0, 1_000)
        );
        assert_eq!(w.metrics().held, 0);
        // Key 7 (clock 2_000) is late at 1_500; key 5_000, never seen, has no clock yet.
        source.emit((7, 1_500, 1)).await.unwrap();
        source.emit((5_000, 1_500, 1)).await.unwrap();
        let l = late.snapshot();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].key, l[0].watermark, l[0].rejected.clone()),
            (7, 2_000, vec![(1_500, 1_510)])
        );
        // On time for its clock, key 7 is back with that clock.
        source.emit((7, 2_003, 1)).await.unwrap();
        let st = w.stats();
        assert_eq!((st.keys, st.retired_keys, st.held), (2, 999, 2));
        source.emit((7, 2_010, 1)).await.unwrap(); // closes [2_000, 2_010) for key 7 only
        assert_eq!(out.snapshot().last(), Some(&wr(7, 2_000, 2_010, 1)));
        source.close().await.unwrap();
        assert_eq!(w.stats().keys, 0);
    });
}

#[test]
fn count_windows_without_timestamps_keep_numbering_a_freed_key() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source.window(Window::count(2)).key_by(|e| e.0).sum(|e| e.2);
        let out = w.sink_to_vec();
        feed(&source, &[("a", 0, 1), ("a", 0, 2)]).await;
        assert_eq!((w.stats().keys, w.stats().retired_keys), (0, 1));
        feed(&source, &[("a", 0, 4), ("a", 0, 8), ("a", 0, 16)]).await;
        assert_eq!((w.stats().keys, w.stats().retired_keys), (1, 0));
        source.close().await.unwrap();
        // Event indexes of the key go on: 0-1, 2-3, then the leftover 4.
        assert_eq!(
            out.snapshot(),
            vec![wri("a", 0, 1, 3), wri("a", 2, 3, 12), wri("a", 4, 4, 16)]
        );
    });
}

#[test]
fn late_output_shows_in_the_dot_of_the_source() {
    block_on(async {
        for window in [Window::tumbling(10), Window::count(2)] {
            let source = Source::<E>::new().named("events");
            let w = source.window(window).timestamp(|e| e.1).count();
            let _sink = w.sink_to_vec();
            let dot = source.to_dot();
            let id = |label: &str| {
                let line = dot
                    .lines()
                    .find(|l| l.contains(&format!("[label=\"{label}\"]")))
                    .unwrap_or_else(|| panic!("no {label} in {dot}"));
                line.trim().split(' ').next().unwrap().to_string()
            };
            let (win, late) = (id(w.name().as_str()), id("late"));
            assert!(dot.contains(&format!("{win} -> {late};")), "{dot}");
        }
    });
}

// ---------------------------------------------------------------- watermarks and clock

#[test]
fn explicit_watermarks_only_move_by_advance() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .explicit_watermarks()
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", 5, 1), ("a", 50, 2)]).await;
        assert!(out.snapshot().is_empty());
        w.advance(10).await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1)]);
        w.advance(5).await.unwrap(); // regression: ignored
        assert_eq!(w.stats().watermark, Some(10));
        feed(&source, &[("a", 7, 4)]).await; // [0, 10) closed
        assert_eq!(late.snapshot().len(), 1);
        w.advance(60).await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1), wr((), 50, 60, 2)]);
    });
}

#[test]
fn explicit_watermark_respects_grace() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .grace(5)
            .explicit_watermarks()
            .count();
        let out = w.sink_to_vec();
        feed(&source, &[("a", 5, 1)]).await;
        w.advance(14).await.unwrap(); // watermark 9
        assert!(out.snapshot().is_empty());
        w.advance(15).await.unwrap(); // watermark 10
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1)]);
    });
}

#[test]
fn watermarks_from_an_upstream_stream() {
    block_on(async {
        let events = Source::<E>::new();
        let marks = Source::<i64>::new();
        let out = events
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .watermarks(&marks)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&events, &[("a", 3, 1), ("a", 30, 2)]).await;
        assert!(out.snapshot().is_empty());
        marks.emit(20).await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1)]);
        events.close().await.unwrap();
        assert_eq!(
            out.snapshot().len(),
            1,
            "still waiting for the watermark stream to end"
        );
        marks.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1), wr((), 30, 40, 2)]);
    });
}

#[test]
fn explicit_advance_also_works_in_event_time_mode() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .count();
        let out = w.sink_to_vec();
        feed(&source, &[("a", 5, 1)]).await;
        w.advance(10).await.unwrap();
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1)]);
    });
}

#[test]
fn max_future_skew_counts_but_does_not_move_the_clock() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .max_future_skew(100)
            .count();
        let out = w.sink_to_vec();
        feed(&source, &[("a", 5, 0), ("a", 1_000_000, 0), ("a", 8, 0)]).await;
        assert!(out.snapshot().is_empty());
        assert_eq!(w.stats().late_events, 0);
        feed(&source, &[("a", 50, 0)]).await; // within skew: moves the clock
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 2)]);
        source.close().await.unwrap();
        assert_eq!(out.snapshot()[2], wr((), 1_000_000, 1_000_010, 1));
    });
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_the_last_window_of_a_quiet_stream() {
    let source = Source::<E>::new();
    let out = source
        .window(Window::tumbling(1_000))
        .timestamp(|e| e.1)
        .grace(500)
        .idle_timeout(Duration::from_secs(2))
        .count()
        .sink_to_vec();
    feed(&source, &[("a", 100, 0), ("a", 900, 0)]).await;
    tokio::time::sleep(Duration::from_millis(1_900)).await;
    assert!(out.snapshot().is_empty(), "not idle for 2 s yet");
    // At 2 s idle the clock moves by 2 s: 900 + 2000 - 500 = 2400 >= 1000.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(out.snapshot(), vec![wr((), 0, 1_000, 2)]);
    source.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_keeps_advancing_while_quiet() {
    let source = Source::<E>::new();
    let out = source
        .window(Window::tumbling(10_000))
        .timestamp(|e| e.1)
        .idle_timeout(1_000)
        .count()
        .sink_to_vec();
    feed(&source, &[("a", 0, 0)]).await;
    // Clock: 0, then +1 s per idle second: reaches 10 s after 10 s of quiet.
    tokio::time::sleep(Duration::from_millis(9_500)).await;
    assert!(out.snapshot().is_empty());
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(out.snapshot(), vec![wr((), 0, 10_000, 1)]);
    source.close().await.unwrap();
}

// ---------------------------------------------------------------- emit modes, end of stream

#[test]
fn current_mode_emits_each_update_and_nothing_at_close() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .emit_mode(EmitMode::Current)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 7, 1), ("a", 8, 2), ("a", 12, 4)]).await;
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![
                wr((), 0, 10, 1),
                wr((), 5, 15, 1),
                wr((), 0, 10, 3),
                wr((), 5, 15, 3),
                wr((), 5, 15, 7), // 12 closes nothing it updated; [0, 10) closes silently
                wr((), 10, 20, 4),
            ]
        );
    });
}

#[test]
fn end_of_stream_flushes_every_open_window_in_order() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .key_by(|e| e.0)
            .grace(1_000)
            .count()
            .sink_to_vec();
        feed(
            &source,
            &[("x", 35, 0), ("y", 5, 0), ("x", 1, 0), ("y", 36, 0)],
        )
        .await;
        assert!(out.snapshot().is_empty());
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![
                wr("y", 0, 10, 1),
                wr("x", 0, 10, 1),
                wr("x", 30, 40, 1),
                wr("y", 30, 40, 1)
            ]
        );
    });
}

#[test]
fn results_carry_end_minus_one_and_feed_a_larger_window() {
    block_on(async {
        let source = Source::<E>::new();
        let small = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .sum(|e| e.2);
        let big = small
            .window(Window::tumbling(100))
            .timestamp(|r| r.timestamp())
            .sum(|r| r.value)
            .sink_to_vec();
        feed(
            &source,
            &[("a", 5, 1), ("a", 95, 2), ("a", 99, 4), ("a", 100, 8)],
        )
        .await;
        source.close().await.unwrap();
        assert_eq!(big.snapshot(), vec![wr((), 0, 100, 7), wr((), 100, 200, 8)]);
    });
}

// ---------------------------------------------------------------- sliding

#[test]
fn sliding_one_window_per_distinct_timestamp() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 0, 1), ("a", 5, 2)]).await;
        // u = 0 closes when 0 + 1 <= watermark 5.
        assert_eq!(out.snapshot(), vec![wri((), -10, 0, 1)]);
        feed(&source, &[("a", 12, 4), ("a", 12, 8)]).await;
        source.close().await.unwrap();
        // u = 5: [-5, 5] = {0, 5}; u = 12: [2, 12] = {5, 12, 12}.
        assert_eq!(
            out.snapshot(),
            vec![wri((), -10, 0, 1), wri((), -5, 5, 3), wri((), 2, 12, 14)]
        );
    });
}

#[test]
fn sliding_inclusive_bounds_and_out_of_order_updates() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .grace(10)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 0, 1), ("a", 10, 2), ("a", 3, 4)]).await;
        source.close().await.unwrap();
        // u = 0: {0}; u = 3: [-7, 3] = {0, 3}; u = 10: [0, 10] = {0, 10, 3} (both ends inclusive).
        assert_eq!(
            out.snapshot(),
            vec![wri((), -10, 0, 1), wri((), -7, 3, 5), wri((), 0, 10, 7)]
        );
    });
}

#[test]
fn sliding_late_partially_and_fully() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .sum(|e| e.2);
        let out = w.sink_to_vec();
        let late = w.late().sink_to_vec();
        feed(&source, &[("a", 0, 1), ("a", 20, 2), ("a", 15, 4)]).await;
        // Own window u = 15 closed (16 <= 20), but u = 20 ([10, 20]) is open and accepts it.
        let l = &late.snapshot()[0];
        assert_eq!(
            (l.rejected.clone(), l.accepted, l.lateness),
            (vec![(5, 15)], 1, 5)
        );
        feed(&source, &[("a", 40, 8), ("a", 25, 16)]).await;
        // 25 + 10 + 1 <= 40: fully late.
        let l = &late.snapshot()[1];
        assert_eq!((l.accepted, l.is_fully_late()), (0, true));
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot(),
            vec![wri((), -10, 0, 1), wri((), 10, 20, 6), wri((), 30, 40, 8)]
        );
    });
}

#[test]
fn sliding_results_end_at_u_in_every_output_and_feed_a_window_at_u() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .sum(|e| e.2);
        let late = w.late().sink_to_vec();
        // A sliding result's own time is u: the window ending at 99 lands in [0, 100), the
        // one ending at 100 in [100, 200) (as `end - 1` it would have been 99).
        let big = w
            .window(Window::tumbling(100))
            .timestamp(|r| r.timestamp())
            .collect(|r| r.end)
            .sink_to_vec();
        let closed = w.sink_to_vec();
        feed(
            &source,
            &[("a", 99, 1), ("a", 100, 2), ("a", 120, 4), ("a", 50, 8)],
        )
        .await;
        source.close().await.unwrap();
        let results = closed.snapshot();
        assert_eq!(
            results,
            vec![
                wri((), 89, 99, 1),
                wri((), 90, 100, 3),
                wri((), 110, 120, 4)
            ]
        );
        assert!(
            results
                .iter()
                .all(|r| r.end_inclusive && r.timestamp() == r.end)
        );
        let starts: Vec<_> = big
            .snapshot()
            .iter()
            .map(|b| (b.start, b.value.clone()))
            .collect();
        assert_eq!(starts, vec![(0, vec![99]), (100, vec![100, 120])]);
        // The late event's own window is reported the same way: [40, 50].
        let l = &late.snapshot()[0];
        assert_eq!((l.ts, l.rejected.clone()), (50, vec![(40, 50)]));
    });
}

#[test]
fn sliding_results_in_current_mode_end_at_u() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .emit_mode(EmitMode::Current)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(&source, &[("a", 5, 1), ("a", 8, 2)]).await;
        // u = 5 opens [-5, 5]; 8 lies after it, so it only opens [-2, 8] = {5, 8}.
        assert_eq!(out.snapshot(), vec![wri((), -5, 5, 1), wri((), -2, 8, 3)]);
    });
}

// ---------------------------------------------------------------- count windows

#[test]
fn count_tumbling_reports_min_and_max_timestamps() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::count(3))
            .timestamp(|e| e.1)
            .sum(|e| e.2)
            .sink_to_vec();
        let events: Vec<E> = (1..=7).map(|i| ("a", 100 - 10 * i, i)).collect();
        feed(&source, &events).await;
        assert_eq!(
            out.snapshot(),
            vec![wri((), 70, 90, 6), wri((), 40, 60, 15)]
        );
        source.close().await.unwrap();
        assert_eq!(out.snapshot()[2], wri((), 30, 30, 7));
    });
}

#[test]
fn count_hopping_and_leftovers() {
    block_on(async {
        let source = Source::<i64>::new();
        let out = source
            .window(Window::count_hopping(3, 1))
            .sum(|x| *x)
            .sink_to_vec();
        for x in 1..=4 {
            source.emit(x).await.unwrap();
        }
        source.close().await.unwrap();
        // No timestamp extractor: bounds are event indexes. [3, 4] and [4] hold nothing new.
        assert_eq!(out.snapshot(), vec![wri((), 0, 2, 6), wri((), 1, 3, 9)]);

        let source = Source::<i64>::new();
        let out = source
            .window(Window::count_hopping(3, 1))
            .sum(|x| *x)
            .sink_to_vec();
        source.emit(1).await.unwrap();
        source.emit(2).await.unwrap();
        source.close().await.unwrap();
        // Partial [1, 2] holds events no window held; [2] then holds nothing new.
        assert_eq!(out.snapshot(), vec![wri((), 0, 1, 3)]);
    });
}

#[test]
fn count_windows_per_key_and_discard() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::count(2))
            .key_by(|e| e.0)
            .leftover(Leftover::Discard)
            .sum(|e| e.2)
            .sink_to_vec();
        feed(
            &source,
            &[
                ("a", 0, 1),
                ("b", 0, 2),
                ("a", 0, 4),
                ("b", 0, 8),
                ("a", 0, 16),
            ],
        )
        .await;
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![wri("a", 0, 1, 5), wri("b", 0, 1, 10)]);
    });
}

#[test]
fn count_windows_current_mode() {
    block_on(async {
        let source = Source::<i64>::new();
        let out = source
            .window(Window::count(2))
            .emit_mode(EmitMode::Current)
            .sum(|x| *x)
            .sink_to_vec();
        for x in [1, 2, 4] {
            source.emit(x).await.unwrap();
        }
        source.close().await.unwrap();
        let v: Vec<i64> = out.snapshot().into_iter().map(|w| w.value).collect();
        assert_eq!(v, vec![1, 3, 4]);
    });
}

// ---------------------------------------------------------------- aggregates

#[test]
fn aggregates_first_last_collect_by_event_time_then_arrival() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(100))
            .timestamp(|e| e.1)
            .grace(100)
            .aggregate((
                first(|e: &E| e.2),
                last(|e: &E| e.2),
                collect(|e: &E| e.2),
                min(|e: &E| e.2),
                max(|e: &E| e.2),
                mean(|e: &E| e.2 as f64),
            ))
            .sink_to_vec();
        feed(
            &source,
            &[
                ("a", 50, 1),
                ("a", 10, 2),
                ("a", 10, 3),
                ("a", 50, 4),
                ("a", 30, 5),
            ],
        )
        .await;
        source.close().await.unwrap();
        assert_eq!(
            out.snapshot()[0].value,
            (2, 4, vec![2, 3, 5, 1, 4], 1, 5, 3.0)
        );
    });
}

#[test]
fn aggregates_on_hopping_panes() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::hopping(20, 10))
            .timestamp(|e| e.1)
            .aggregate((
                count(),
                sum(|e: &E| e.2),
                first(|e: &E| e.2),
                last(|e: &E| e.2),
            ))
            .sink_to_vec();
        feed(&source, &[("a", 5, 1), ("a", 15, 2), ("a", 15, 3)]).await;
        source.close().await.unwrap();
        let v: Vec<_> = out
            .snapshot()
            .into_iter()
            .map(|w| (w.start, w.value))
            .collect();
        assert_eq!(
            v,
            vec![(-10, (1, 1, 1, 1)), (0, (3, 6, 1, 3)), (10, (2, 5, 2, 3))]
        );
    });
}

#[test]
fn reduce_in_arrival_order() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .aggregate(reduce(String::new(), |s: String, e: &E| s + e.0))
            .sink_to_vec();
        feed(&source, &[("x", 5, 0), ("y", 1, 0)]).await;
        source.close().await.unwrap();
        assert_eq!(out.snapshot()[0].value, "xy");
    });
}

// ---------------------------------------------------------------- tokens, bad input

#[test]
fn tokens_are_held_until_the_window_is_emitted() {
    block_on(async {
        let source = Source::<E>::new();
        let _out = source
            .window(Window::hopping(20, 10))
            .timestamp(|e| e.1)
            .count()
            .sink_to_vec();
        let released = Arc::new(AtomicUsize::new(0));
        let r = released.clone();
        source
            .emit_with_ack(
                ("a", 15, 0),
                Ack::new(move |_| {
                    r.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .await
            .unwrap();
        source.emit(("a", 20, 0)).await.unwrap(); // closes [0, 20), [10, 30) still holds it
        assert_eq!(released.load(Ordering::SeqCst), 0);
        source.emit(("a", 30, 0)).await.unwrap(); // closes [10, 30)
        assert_eq!(released.load(Ordering::SeqCst), 1);
    });
}

#[test]
#[should_panic(expected = "must not exceed the size")]
fn step_larger_than_size_panics() {
    let _ = Window::hopping(10, 20);
}

#[test]
#[should_panic(expected = "size must be > 0")]
fn zero_size_panics() {
    let _ = Window::tumbling(0);
}

#[test]
#[should_panic(expected = "grace must be >= 0")]
fn negative_grace_panics() {
    let source = Source::<i64>::new();
    let _ = source
        .window(Window::tumbling(10))
        .timestamp(|t| *t)
        .grace(-1);
}

#[test]
#[should_panic(expected = "needs `.timestamp")]
fn time_window_without_timestamp_panics() {
    let source = Source::<i64>::new();
    let _ = source.window(Window::tumbling(10)).count();
}

#[test]
fn durations_round_to_the_nearest_ms() {
    assert_eq!(
        Window::tumbling(Duration::from_micros(1_499)),
        Window::tumbling(1)
    );
    assert_eq!(
        Window::hopping(Duration::from_secs(10), Duration::from_secs(1)),
        Window::hopping(10_000, 1_000)
    );
}

#[test]
fn extreme_timestamps_never_panic_and_gaps_stay_small() {
    block_on(async {
        for w in [
            Window::tumbling(1_000),
            Window::hopping(10_000, 1_000),
            Window::sliding(1_000),
            Window::hopping(7, 3),
        ] {
            let source = Source::<E>::new();
            let win = source
                .window(w)
                .timestamp(|e| e.1)
                .grace(i64::MAX)
                .sum(|e| e.2);
            let out = win.sink_to_vec();
            for e in [
                ("a", i64::MIN, 1),
                ("a", 0, 1),
                ("a", i64::MAX, 1),
                ("a", i64::MIN + 1, 1),
                ("a", i64::MAX - 1, 1),
            ] {
                source.emit(e).await.unwrap();
            }
            assert!(win.stats().held < 100, "{w:?}: {:?}", win.stats());
            source.close().await.unwrap();
            assert!(!out.snapshot().is_empty());
        }
        // A gap of 30 years between two events: no empty panes in between.
        let source = Source::<E>::new();
        let win = source
            .window(Window::hopping(10_000, 1_000))
            .timestamp(|e| e.1)
            .sum(|e| e.2);
        let out = win.sink_to_vec();
        feed(&source, &[("a", 0, 1), ("a", 1_000_000_000_000, 2)]).await;
        assert_eq!(out.len(), 10);
        source.close().await.unwrap();
        assert_eq!(out.len(), 20);
    });
}

/// A window whose end lies past `i64::MAX` (its end clamps there) closes only at the end of
/// the stream: a watermark at `i64::MAX` would close it on the event that opened it, and it
/// would then open again and be emitted twice.
#[test]
fn windows_ending_past_i64_max_close_once_at_the_end() {
    const MAX: i64 = i64::MAX;
    block_on(async {
        let source = Source::<E>::new();
        let tumbling = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .count();
        let hopping = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .count();
        let sliding = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .count();
        let (t, h, s) = (
            tumbling.sink_to_vec(),
            hopping.sink_to_vec(),
            sliding.sink_to_vec(),
        );
        let late = tumbling.late().sink_to_vec();
        feed(
            &source,
            &[("a", MAX - 3, 0), ("a", MAX, 0), ("a", MAX - 1, 0)],
        )
        .await;
        assert!(t.snapshot().is_empty(), "{:?}", t.snapshot());
        // [MAX - 12, MAX - 2) ends inside the range: it closes under the event at MAX.
        assert_eq!(h.snapshot(), vec![wr((), MAX - 12, MAX - 2, 1)]);
        source.close().await.unwrap();
        // All three in [MAX - 7, MAX + 3), reported with its end clamped.
        assert_eq!(t.snapshot(), vec![wr((), MAX - 7, MAX, 3)]);
        assert!(late.is_empty());
        // Then each window once: [MAX - 7, MAX + 3) holds all three, [MAX - 2, MAX + 8) two.
        assert_eq!(
            h.snapshot(),
            vec![
                wr((), MAX - 12, MAX - 2, 1),
                wr((), MAX - 7, MAX, 3),
                wr((), MAX - 2, MAX, 2)
            ]
        );
        let got: Vec<(i64, i64, u64)> = s
            .snapshot()
            .iter()
            .map(|r| (r.start, r.end, r.value))
            .collect();
        // Sliding windows end at each event: `[u - 10, u]` for u = MAX - 3, MAX - 1 and MAX.
        assert_eq!(
            got,
            vec![
                (MAX - 13, MAX - 3, 1),
                (MAX - 11, MAX - 1, 2),
                (MAX - 10, MAX, 3)
            ]
        );
    });
}

/// In current mode a sliding window ending at `i64::MAX` is found and reported as such.
#[test]
fn a_sliding_window_at_i64_max_in_current_mode() {
    block_on(async {
        let source = Source::<E>::new();
        let out = source
            .window(Window::sliding(10))
            .timestamp(|e| e.1)
            .emit_mode(EmitMode::Current)
            .count()
            .sink_to_vec();
        feed(&source, &[("a", i64::MAX, 0)]).await;
        assert_eq!(out.snapshot(), vec![wri((), i64::MAX - 10, i64::MAX, 1)]);
        source.close().await.unwrap();
    });
}

/// An event at `i64::MIN` sets the clock like any other: a later event beyond the maximum
/// future skew does not move it.
#[test]
fn an_event_at_i64_min_sets_the_clock() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::tumbling(10))
            .timestamp(|e| e.1)
            .max_future_skew(100)
            .count();
        let _out = w.sink_to_vec();
        feed(&source, &[("a", i64::MIN, 0)]).await;
        assert_eq!(w.stats().watermark, Some(i64::MIN));
        feed(&source, &[("a", i64::MIN + 1_000, 0)]).await;
        assert_eq!(w.stats().watermark, Some(i64::MIN), "beyond the skew");
    });
}

// ---------------------------------------------------------------- mini-batch emitters

mod batches {
    use std::time::Duration;

    use brooklet::Source;
    use brooklet::window::{
        Buffered, CountWindow, Emitter, FixedTimeWindow, Poll, RelaxedTimeWindow,
    };
    use tokio::time::sleep;

    /// Sorts the buffer by `.0` and emits only the even values, in batches of `n`; odd values
    /// are dropped; leftovers (fewer than `n` evens) are flushed at the end.
    struct SortedEvens {
        n: usize,
    }

    impl SortedEvens {
        fn evens(buffer: &[Buffered<(u32, char)>]) -> Vec<usize> {
            let mut evens: Vec<usize> = (0..buffer.len())
                .filter(|&i| buffer[i].item.0.is_multiple_of(2))
                .collect();
            evens.sort_by_key(|&i| buffer[i].item.0);
            evens
        }
    }

    impl Emitter<(u32, char)> for SortedEvens {
        fn poll(&mut self, buffer: &[Buffered<(u32, char)>], _now: i64) -> Poll {
            let discard = (0..buffer.len())
                .filter(|&i| buffer[i].item.0 % 2 == 1)
                .collect();
            let evens = Self::evens(buffer);
            let full = evens.len() / self.n * self.n;
            Poll {
                batches: evens[..full]
                    .chunks(self.n)
                    .map(<[usize]>::to_vec)
                    .collect(),
                discard,
                ..Poll::default()
            }
        }

        fn flush(&mut self, buffer: &[Buffered<(u32, char)>], _now: i64) -> Poll {
            let evens = Self::evens(buffer);
            Poll {
                batches: if evens.is_empty() {
                    vec![]
                } else {
                    vec![evens]
                },
                ..Poll::default()
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn user_emitter_sorted_evens_in_batches_of_n() {
        let source = Source::new();
        let out = source.batch(SortedEvens { n: 2 }).sink_to_vec();
        for x in [
            (8, 'h'),
            (3, 'c'),
            (6, 'f'),
            (2, 'b'),
            (5, 'e'),
            (4, 'd'),
            (10, 'j'),
        ] {
            source.emit(x).await.unwrap();
            tokio::task::yield_now().await;
        }
        source.close().await.unwrap();
        // Arrivals: 8 | 3 (dropped) | 6 → [6, 8] | 2 | 5 (dropped) | 4 → [2, 4] | 10, flushed.
        assert_eq!(
            out.snapshot(),
            vec![
                vec![(6, 'f'), (8, 'h')],
                vec![(2, 'b'), (4, 'd')],
                vec![(10, 'j')]
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn count_window_emits_the_n_oldest() {
        let source = Source::new();
        let out = source.batch(CountWindow::new(2)).sink_to_vec();
        for x in 0..5 {
            source.emit(x).await.unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(out.snapshot(), vec![vec![0, 1], vec![2, 3]]);
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[tokio::test(start_paused = true)]
    async fn count_window_with_timeout_is_partition_with_timeout() {
        let source = Source::new();
        let out = source
            .batch(CountWindow::new(3).timeout(Duration::from_secs(1)))
            .sink_to_vec();
        for x in 0..4 {
            source.emit(x).await.unwrap();
        }
        sleep(Duration::from_millis(999)).await;
        assert_eq!(out.snapshot(), vec![vec![0, 1, 2]]);
        sleep(Duration::from_millis(2)).await;
        assert_eq!(out.snapshot(), vec![vec![0, 1, 2], vec![3]]);
        source.close().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn fixed_time_window_slices_empty_slices_and_stragglers() {
        let source = Source::new();
        // Creation time: the item's own field, relative to the stream start read on emit.
        let start = tokio::time::Instant::now();
        let epoch_start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let _ = start;
        let batched = source.batch_timed(FixedTimeWindow::new(1_000), |x: &(i64, char)| x.0);
        let out = batched.sink_to_vec();
        let late = batched.late().sink_to_vec();
        tokio::task::yield_now().await; // the node starts: slices aligned to the stream start
        let t0 = epoch_start;
        source.emit((t0 + 100, 'a')).await.unwrap();
        source.emit((t0 + 900, 'b')).await.unwrap();
        sleep(Duration::from_millis(1_200)).await; // slice 0 ready at 1000
        source.emit((t0 + 500, 'c')).await.unwrap(); // created in slice 0: straggler
        source.emit((t0 + 1_500, 'd')).await.unwrap();
        sleep(Duration::from_millis(2_000)).await; // slices 1 and 2 (empty) ready
        assert_eq!(late.snapshot(), vec![(t0 + 500, 'c')]);
        let got: Vec<Vec<char>> = out
            .snapshot()
            .into_iter()
            .map(|b| b.into_iter().map(|x| x.1).collect())
            .collect();
        assert_eq!(got, vec![vec!['a', 'b'], vec!['d'], vec![]]);
        source.close().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn relaxed_time_window_emits_everything_at_each_slice_end() {
        let source = Source::new();
        let out = source
            .batch_timed(RelaxedTimeWindow::new(1_000), |x: &i64| *x)
            .sink_to_vec();
        tokio::task::yield_now().await;
        source.emit(5).await.unwrap();
        source.emit(-100).await.unwrap(); // a straggler by time: still included
        sleep(Duration::from_millis(1_001)).await;
        assert_eq!(out.snapshot(), vec![vec![5, -100]]);
        sleep(Duration::from_millis(3_000)).await; // empty slices emit nothing
        source.emit(7).await.unwrap();
        source.close().await.unwrap();
        assert_eq!(out.snapshot(), vec![vec![5, -100], vec![7]]);
    }
}

#[tokio::test(start_paused = true)]
async fn batch_tokens_are_released_once_the_batch_is_emitted() {
    use brooklet::window::CountWindow;
    let source = Source::new();
    let out = source.batch(CountWindow::new(2)).sink_to_vec();
    let released = Arc::new(AtomicUsize::new(0));
    let r = released.clone();
    source
        .emit_with_ack(
            1,
            Ack::new(move |_| {
                r.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .await
        .unwrap();
    tokio::task::yield_now().await;
    assert_eq!(released.load(Ordering::SeqCst), 0, "still buffered");
    source.emit(2).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(out.snapshot(), vec![vec![1, 2]]);
    assert_eq!(released.load(Ordering::SeqCst), 1);
    source.close().await.unwrap();
}

#[test]
fn an_event_never_closes_a_window_it_just_updated() {
    block_on(async {
        let source = Source::<E>::new();
        // Grace 0: the event at 19 moves the watermark to 19, and [10, 20) which it updated
        // stays open; [0, 10) closes.
        let out = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .count()
            .sink_to_vec();
        feed(&source, &[("a", 9, 0), ("a", 19, 0)]).await;
        assert_eq!(out.snapshot(), vec![wr((), 0, 10, 1), wr((), 5, 15, 1)]);
    });
}

#[test]
fn window_metrics_and_dot_show_the_node() {
    block_on(async {
        let source = Source::<E>::new();
        let w = source
            .window(Window::hopping(10, 5))
            .timestamp(|e| e.1)
            .count();
        let late = w.late();
        let _sink = late.sink_to_vec();
        feed(&source, &[("a", 1, 0), ("a", 7, 0)]).await;
        assert_eq!(w.metrics().received, 2);
        assert!(w.metrics().held > 0);
        // The late side output knows its owner (and the owner lists it as a side output).
        let dot = late.to_dot();
        assert!(
            dot.contains("hopping_window") && dot.contains("late"),
            "{dot}"
        );
    });
}

mod warnings {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use brooklet::Source;
    use brooklet::window::Window;
    use futures::executor::block_on;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Level, Metadata, Subscriber};

    /// Counts warning and debug events.
    struct Counting {
        warn: Arc<AtomicUsize>,
        debug: Arc<AtomicUsize>,
    }

    impl Subscriber for Counting {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            match *e.metadata().level() {
                Level::WARN => self.warn.fetch_add(1, Ordering::SeqCst),
                Level::DEBUG => self.debug.fetch_add(1, Ordering::SeqCst),
                _ => 0,
            };
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn late_events_without_consumer_warn_at_a_limited_rate() {
        let warn = Arc::new(AtomicUsize::new(0));
        let debug = Arc::new(AtomicUsize::new(0));
        let sub = Counting {
            warn: warn.clone(),
            debug: debug.clone(),
        };
        tracing::subscriber::with_default(sub, || {
            block_on(async {
                let source = Source::<i64>::new();
                let w = source
                    .window(Window::tumbling(10))
                    .timestamp(|t| *t)
                    .count();
                source.emit(1_000).await.unwrap();
                for _ in 0..1_000 {
                    source.emit(5).await.unwrap();
                }
                assert_eq!(w.stats().late_events, 1_000);
            })
        });
        assert_eq!(
            debug.load(Ordering::SeqCst),
            1_000,
            "each late event at debug level"
        );
        // Warnings at late events 1, 2, 4, ..., 512: ten lines for a thousand events.
        assert_eq!(warn.load(Ordering::SeqCst), 10);
    }
}

// ---------------------------------------------------------------- failures

mod failures {
    use std::fmt::Debug;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Arc, Mutex};

    use brooklet::window::{
        Aggregator, Window, WindowResult,
        aggregate::{collect, count, first, last, max, mean, min, reduce, sum},
    };
    use brooklet::{Ack, Outcome, Source};
    use futures::executor::block_on;

    type Ev = (&'static str, i64, i64); // (key, ts, value)

    /// Outcomes seen by tokens: (label, done).
    type Seen = Arc<Mutex<Vec<(&'static str, bool)>>>;

    /// Tokens that record their outcome under a label.
    fn recorder() -> (Seen, impl Fn(&'static str) -> Ack) {
        let seen = Seen::default();
        let s = seen.clone();
        (seen, move |label| {
            let s = s.clone();
            Ack::new(move |o: Outcome| s.lock().unwrap().push((label, o.is_done())))
        })
    }

    /// Three keys close in one window at once; the consumer panics on key "a": "b" and "c"
    /// are still delivered, the panic reaches the caller, and the window counts it.
    #[test]
    fn a_panic_on_one_result_still_delivers_the_others_closed_by_the_event() {
        block_on(async {
            let source = Source::<Ev>::new();
            let w = source
                .window(Window::tumbling(10))
                .timestamp(|e| e.1)
                .key_by(|e| e.0)
                .sum(|e| e.2);
            let out = w
                .map(|r: WindowResult<&'static str, i64>| {
                    assert!(r.key != "a", "consumer fails on a");
                    (r.key, r.value)
                })
                .sink_to_vec();
            let (outcomes, ack) = recorder();
            for e in [("a", 1, 1), ("b", 2, 2), ("c", 3, 3)] {
                source.emit_with_ack(e, ack(e.0)).await.unwrap();
            }
            let r = catch_unwind(AssertUnwindSafe(|| source.emit(("d", 25, 4))));
            assert!(
                r.is_err(),
                "the consumer's panic reaches the caller of emit"
            );
            assert_eq!(out.snapshot(), vec![("b", 2), ("c", 3)]);
            assert_eq!(w.metrics().errors, 1);
            // b and c were delivered; a's result was not.
            let mut seen = outcomes.lock().unwrap().clone();
            seen.sort();
            assert_eq!(seen, vec![("a", false), ("b", true), ("c", true)]);
            // The node goes on working.
            source.emit(("b", 31, 5)).await.unwrap();
            assert_eq!(out.snapshot(), vec![("b", 2), ("c", 3), ("d", 4)]);
        });
    }

    #[test]
    fn a_panic_on_one_flushed_result_still_delivers_the_others() {
        block_on(async {
            let source = Source::<Ev>::new();
            let out = source
                .window(Window::count(3))
                .timestamp(|e| e.1)
                .key_by(|e| e.0)
                .sum(|e| e.2)
                .map(|r: WindowResult<&'static str, i64>| {
                    assert!(r.key != "a", "consumer fails on a");
                    (r.key, r.value)
                })
                .sink_to_vec();
            for e in [("a", 1, 1), ("b", 2, 2), ("c", 3, 3)] {
                source.emit(e).await.unwrap();
            }
            let r = catch_unwind(AssertUnwindSafe(|| source.close()));
            assert!(r.is_err());
            assert_eq!(out.snapshot(), vec![("b", 2), ("c", 3)]);
        });
    }

    /// Runs `events` through `window` with the aggregate `agg(true)` (whose closure panics on
    /// value 3) and `agg(false)` (which never panics) fed the same events without value 3:
    /// the results and the operator's statistics must be the same, as if the failing event
    /// never arrived.
    /// Returns how many events failed.
    fn as_if_never_there<A, F>(window: Window, agg: F) -> usize
    where
        A: Aggregator<Ev>,
        A::Out: PartialEq + Debug,
        F: Fn(bool) -> A,
    {
        let events: Vec<Ev> = (0..12)
            .map(|v| (if v % 3 == 0 { "a" } else { "b" }, v * 15, v))
            .collect();
        // `failed`: the events that panicked in the faulty run (an aggregate may skip its
        // extractor for an event it does not need, such as `first` for a later event).
        let run = |faulty: bool, failed: &mut Vec<i64>| {
            block_on(async {
                let source = Source::<Ev>::new();
                let w = source
                    .window(window)
                    .timestamp(|e| e.1)
                    .key_by(|e| e.0)
                    .aggregate(agg(faulty));
                let out = w.sink_to_vec();
                let mut stats = vec![];
                for e in &events {
                    if faulty {
                        if catch_unwind(AssertUnwindSafe(|| source.emit(*e))).is_err() {
                            failed.push(e.2);
                        }
                    } else if !failed.contains(&e.2) {
                        source.emit(*e).await.unwrap();
                    }
                    let mut s = w.stats();
                    s.events = 0; // the failed event is counted or not: not the point
                    s.results = 0;
                    stats.push((s, out.snapshot().len()));
                }
                source.close().await.unwrap();
                (out.snapshot(), stats)
            })
        };
        let mut failed = vec![];
        let (got, got_stats) = run(true, &mut failed);
        let (want, want_stats) = run(false, &mut failed);
        assert_eq!(got, want, "{window:?}");
        assert_eq!(got_stats, want_stats, "{window:?}");
        failed.len()
    }

    fn v(e: &Ev, faulty: bool) -> i64 {
        assert!(
            !faulty || (e.2 != 3 && e.2 != 7),
            "extractor fails on {}",
            e.2
        );
        e.2
    }

    fn all_windows() -> Vec<Window> {
        vec![
            Window::tumbling(100),
            Window::hopping(100, 50),
            Window::hopping(100, 30),
            Window::sliding(40),
            Window::count(3),
            Window::count_hopping(4, 2),
        ]
    }

    #[test]
    fn a_panicking_aggregate_leaves_every_window_as_before_the_event() {
        for w in all_windows() {
            let failed = [
                as_if_never_there(w, |f| sum(move |e: &Ev| v(e, f))),
                as_if_never_there(w, |f| mean(move |e: &Ev| v(e, f) as f64)),
                as_if_never_there(w, |f| min(move |e: &Ev| v(e, f))),
                as_if_never_there(w, |f| max(move |e: &Ev| v(e, f))),
                as_if_never_there(w, |f| last(move |e: &Ev| v(e, f))),
                as_if_never_there(w, |f| collect(move |e: &Ev| v(e, f))),
                as_if_never_there(w, |f| reduce(0, move |acc, e: &Ev| acc + v(e, f))),
                as_if_never_there(w, |f| (count(), sum(move |e: &Ev| v(e, f)))),
                as_if_never_there(w, |f| {
                    (
                        collect(|e: &Ev| e.2),
                        reduce(0, move |a, e: &Ev| a + v(e, f)),
                    )
                }),
                as_if_never_there(w, |f| {
                    (
                        reduce(0, |a, e: &Ev| a + e.2),
                        reduce(1, move |a, e: &Ev| a * v(e, f).max(1)),
                    )
                }),
            ];
            assert!(failed.iter().all(|n| *n == 2), "{w:?}: {failed:?}");
            // `first` reads a value only for an event earlier than the window's first: it may
            // never fail here, and then keeps every event.
            as_if_never_there(w, |f| first(move |e: &Ev| v(e, f)));
        }
    }

    /// A reduce whose closure fails depending on the accumulator: it fails in some windows
    /// of the event and not in others. No window may keep the event.
    #[test]
    fn a_reduce_failing_in_one_window_of_several_updates_none() {
        for w in [
            Window::hopping(100, 50),
            Window::sliding(100),
            Window::count_hopping(4, 2),
        ] {
            let run = || {
                block_on(async {
                    let source = Source::<i64>::new();
                    let out = source
                        .window(w)
                        .timestamp(|x| *x * 10)
                        .reduce(0, |acc: i64, x: &i64| {
                            assert!(
                                !(*x == 6 && acc > 5),
                                "fails when the window already holds more than 5"
                            );
                            acc + x
                        })
                        .sink_to_vec();
                    let mut failed = vec![];
                    for x in 0..10 {
                        if catch_unwind(AssertUnwindSafe(|| source.emit(x))).is_err() {
                            failed.push(x);
                        }
                    }
                    assert_eq!(failed, vec![6], "{w:?}");
                    source.close().await.unwrap();
                    out.snapshot()
                })
            };
            let got = run();
            // Reference: every window without 6 whenever the event failed.
            let want = block_on(async {
                let source = Source::<i64>::new();
                let out = source
                    .window(w)
                    .timestamp(|x| *x * 10)
                    .sum(|x| *x)
                    .sink_to_vec();
                for x in (0..10).filter(|x| *x != 6) {
                    source.emit(x).await.unwrap();
                }
                source.close().await.unwrap();
                out.snapshot()
            });
            // The event failed in at least one window, so it is in none of them.
            assert_eq!(got, want, "{w:?}");
        }
    }

    /// The first event of a key fails: the key is not created (nor its clock moved).
    #[test]
    fn a_failing_first_event_leaves_no_key_behind() {
        for per_key in [false, true] {
            block_on(async {
                let source = Source::<Ev>::new();
                let mut b = source
                    .window(Window::tumbling(10))
                    .timestamp(|e| e.1)
                    .key_by(|e| e.0);
                if per_key {
                    b = b.per_key_clock();
                }
                let w = b.sum(|e: &Ev| {
                    assert!(e.2 != 3, "fails on 3");
                    e.2
                });
                let out = w.sink_to_vec();
                source.emit(("a", 1, 1)).await.unwrap();
                let r = catch_unwind(AssertUnwindSafe(|| source.emit(("b", 25, 3))));
                assert!(r.is_err());
                let st = w.stats();
                assert_eq!(
                    (st.keys, st.held, st.watermark),
                    (1, 1, Some(1)),
                    "{per_key}"
                );
                source.emit(("b", 5, 2)).await.unwrap();
                source.close().await.unwrap();
                let got: Vec<_> = out.snapshot().iter().map(|r| (r.key, r.value)).collect();
                assert_eq!(got, vec![("a", 1), ("b", 2)], "{per_key}");
            });
        }
    }

    #[test]
    fn tumbling_reduce_panicking_at_3_keeps_the_other_events() {
        block_on(async {
            let source = Source::<i64>::new();
            let out = source
                .window(Window::tumbling(100))
                .timestamp(|x| *x)
                .reduce(0, |acc, x: &i64| {
                    assert!(*x != 3, "fails on 3");
                    acc + x
                })
                .sink_to_vec();
            for x in 0..6 {
                let _ = catch_unwind(AssertUnwindSafe(|| source.emit(x)));
            }
            source.close().await.unwrap();
            assert_eq!(out.snapshot()[0].value, 12);
        });
    }
}

// ---------------------------------------------------------------- mini-batch failures

mod batch_failures {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use brooklet::window::{Buffered, CountWindow, Emitter, FixedTimeWindow, Poll};
    use brooklet::{Ack, Outcome, Source};
    use tokio::time::timeout;

    /// Batches of two; panics when it sees item 2.
    struct FailsOnTwo;

    impl Emitter<u32> for FailsOnTwo {
        fn poll(&mut self, buffer: &[Buffered<u32>], _now: i64) -> Poll {
            assert!(buffer.iter().all(|b| b.item != 2), "emitter fails on 2");
            let full = buffer.len() / 2 * 2;
            Poll {
                batches: (0..full).step_by(2).map(|i| vec![i, i + 1]).collect(),
                ..Poll::default()
            }
        }
    }

    /// After the emitter panicked, every later emit and `close()` report an error, none hangs,
    /// and the items it held are failed, not acknowledged as done.
    #[tokio::test(start_paused = true)]
    async fn a_panicking_emitter_fails_every_later_call_and_never_hangs() {
        let source = Source::new();
        let out = source.batch(FailsOnTwo).sink_to_vec();
        let outcomes = Arc::new(Mutex::new(vec![]));
        for x in 0..3u32 {
            let o = outcomes.clone();
            let ack =
                Ack::new(move |outcome: Outcome| o.lock().unwrap().push((x, outcome.is_done())));
            let r = timeout(Duration::from_secs(1), source.emit_with_ack(x, ack)).await;
            assert_eq!(r, Ok(Ok(())), "{x} accepted before the failure");
            tokio::task::yield_now().await; // the node polls after each arrival
        }
        tokio::task::yield_now().await; // the node's task polls and panics
        tokio::task::yield_now().await;
        for x in 3..2_000u32 {
            let r = timeout(Duration::from_secs(1), source.emit(x))
                .await
                .expect("an emit into a failed node never hangs");
            assert!(r.is_err(), "emit {x} after the failure reports it");
        }
        let r = timeout(Duration::from_secs(1), source.close())
            .await
            .expect("close never hangs");
        assert!(r.is_err(), "close reports the failure");
        assert_eq!(out.snapshot(), vec![vec![0, 1]]);
        let mut seen = outcomes.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, vec![(0, true), (1, true), (2, false)]);
    }

    /// A value that counts its clones.
    #[derive(Debug)]
    struct Counted(Arc<AtomicUsize>);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.0.fetch_add(1, Ordering::Relaxed);
            Counted(self.0.clone())
        }
    }

    /// A producer that awaits each emit into a batch that waits an hour is held back: the
    /// node holds a bounded number of items, not everything the producer had.
    #[tokio::test(start_paused = true)]
    async fn a_waiting_batch_holds_a_bounded_number_of_items() {
        let source = Source::new();
        let batched = source.batch(FixedTimeWindow::new(Duration::from_secs(3_600)));
        let out = batched.sink_to_vec();
        let sent = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (source, sent) = (source.clone(), sent.clone());
            tokio::spawn(async move {
                for x in 0..200_000u32 {
                    source.emit(x).await.unwrap();
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let held = batched.metrics().held;
        // The buffer, plus what it took from its input queue just before it was full, plus the
        // input queue (1 024 items, and the push that found it full).
        let bound = brooklet::window::BATCH_CAPACITY as u64 + 2 * 1_025;
        assert!(held <= bound, "holds {held} items (bound {bound})");
        assert!(sent.load(Ordering::Relaxed) < 200_000, "the producer waits");
        // The slice ends: the batch goes out and the producer goes on.
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        assert!(!out.snapshot().is_empty());
        assert!(batched.metrics().held <= bound);
        producer.abort();
        let _ = producer.await;
    }

    /// Waiting for a batch of n items costs no copy of the buffer per arrival: the items are
    /// cloned once, into their batch.
    #[tokio::test(start_paused = true)]
    async fn a_count_window_copies_each_item_once() {
        let clones = Arc::new(AtomicUsize::new(0));
        let source = Source::new();
        let n = 2_000;
        let out = source
            .batch(CountWindow::new(n))
            .sink(|_b: Vec<Counted>| ());
        let _ = out;
        for _ in 0..3 * n {
            source.emit(Counted(clones.clone())).await.unwrap();
            tokio::task::yield_now().await; // one poll per arrival
        }
        source.close().await.unwrap();
        let c = clones.load(Ordering::Relaxed);
        assert!(c <= 3 * n, "{c} clones for {} items", 3 * n);
    }
}

#[test]
fn fixed_time_window_sorts_items_into_every_ended_slice_in_one_poll() {
    use brooklet::window::{Buffered, Emitter, FixedTimeWindow};
    let at = |created| Buffered {
        item: created,
        arrived: 0,
        created,
    };
    for skip in [false, true] {
        let mut e = FixedTimeWindow::new(10).aligned_to_epoch();
        if skip {
            e = e.skip_empty();
        }
        let none: [Buffered<i64>; 0] = [];
        assert!(e.poll(&none, 0).batches.is_empty()); // the first slice starts at 0
        let buf = [at(5), at(35), at(3), at(15), at(-1), at(47)];
        let p = e.poll(&buf, 40);
        assert_eq!(p.stragglers, vec![4], "created before the current slice");
        let want = if skip {
            vec![vec![0, 2], vec![3], vec![1]]
        } else {
            vec![vec![0, 2], vec![3], vec![], vec![1]]
        };
        assert_eq!(p.batches, want);
        assert_eq!(p.wake_at, Some(50));
        // The node removed what the poll named; 47 is kept for [40, 50), a new item is late.
        let rest = [at(47), at(12), at(41)];
        let p = e.poll(&rest, 51);
        assert_eq!(p.stragglers, vec![1]);
        assert_eq!(p.batches, vec![vec![0, 2]]);
    }
}

// ---------------------------------------------------------------- bad parameters, NaN

#[test]
#[should_panic(expected = "puts each event in 86400000 windows, more than the limit")]
fn a_hopping_window_with_a_huge_size_to_step_ratio_is_rejected() {
    let _ = Window::hopping(86_400_000, 1);
}

#[test]
#[should_panic(expected = "more than the limit of 100000")]
fn a_count_window_with_a_huge_size_to_step_ratio_is_rejected() {
    let _ = Window::count_hopping(1_000_000, 3);
}

#[test]
fn ratios_up_to_the_limit_are_accepted() {
    let max = Window::MAX_WINDOWS_PER_EVENT as i64;
    let _ = Window::hopping(max, 1);
    let _ = Window::hopping(86_400_000, 86_400_000 / max);
    let _ = Window::count_hopping(max as usize, 1);
}

mod nan {
    use brooklet::Source;
    use brooklet::window::{
        Window, WindowResult,
        aggregate::{max, mean, min},
    };
    use futures::executor::block_on;

    type F = (i64, f64);

    /// (start, min, max, mean) of each window, NaN written as `None`.
    type Got = Vec<(i64, Option<f64>, Option<f64>, Option<f64>)>;

    fn run(window: Window, events: &[F]) -> Got {
        block_on(async {
            let source = Source::<F>::new();
            let out = source
                .window(window)
                .timestamp(|e| e.0)
                .aggregate((min(|e: &F| e.1), max(|e: &F| e.1), mean(|e: &F| e.1)))
                .sink_to_vec();
            for e in events {
                source.emit(*e).await.unwrap();
            }
            source.close().await.unwrap();
            let n = |x: f64| (!x.is_nan()).then_some(x);
            out.snapshot()
                .into_iter()
                .map(|w: WindowResult<(), (f64, f64, f64)>| {
                    (w.start, n(w.value.0), n(w.value.1), n(w.value.2))
                })
                .collect()
        })
    }

    #[test]
    fn min_and_max_ignore_nan_in_hopping_panes() {
        // Panes [0, 2) = {1.0} and [2, 4) = {NaN, 0.5}.
        let got = run(Window::hopping(4, 2), &[(0, 1.0), (2, f64::NAN), (3, 0.5)]);
        assert_eq!(
            got,
            vec![
                (-2, Some(1.0), Some(1.0), Some(1.0)),
                (0, Some(0.5), Some(1.0), None),
                (2, Some(0.5), Some(0.5), None),
            ]
        );
    }

    #[test]
    fn results_do_not_depend_on_where_nan_arrives() {
        let orders = [
            [(0, 1.0), (1, f64::NAN), (2, 0.5)],
            [(1, f64::NAN), (0, 1.0), (2, 0.5)],
            [(2, 0.5), (0, 1.0), (1, f64::NAN)],
        ];
        for w in [
            Window::tumbling(10),
            Window::hopping(10, 5),
            Window::sliding(10),
            Window::count(3),
        ] {
            for events in &orders {
                let got = run(w, events);
                let last = got.last().expect("a window with all three");
                assert_eq!(
                    (last.1, last.2, last.3),
                    (Some(0.5), Some(1.0), None),
                    "{w:?} {events:?}"
                );
            }
            // Only NaN: the result is NaN.
            let got = run(w, &[(0, f64::NAN), (1, f64::NAN)]);
            assert!(got.iter().all(|g| g.1.is_none() && g.2.is_none()), "{w:?}");
        }
    }
}
