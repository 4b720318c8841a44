//! Semantics of the synchronous operators, with the cases of Streamz's own test suite.

use brooklet::{EmitOn, Source};
use futures::StreamExt;

/// Polls `f` once from inside an async test: `Ready` with its output, or `Pending`.
async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut *f).poll(cx))).await
}

#[tokio::test]
async fn map_filter_accumulate() {
    let source = Source::new();
    let out = source
        .map(|x: i64| x * 2)
        .filter(|x| x % 3 == 0)
        .accumulate(0, |a, x| a + x)
        .sink_to_vec();
    for x in 0..10 {
        source.emit(x).await.unwrap();
    }
    // 0, 6, 12, 18 pass the filter.
    assert_eq!(out.snapshot(), vec![0, 6, 18, 36]);
}

#[tokio::test]
async fn accumulate_state_emits_output_not_state() {
    // Streamz: f returns (acc + x, acc * 10) with start 100 on 1, 2, 3 -> [1000, 1010, 1030].
    let source = Source::new();
    let out = source
        .accumulate_state(100, |acc: i64, x: i64| (acc + x, acc * 10))
        .sink_to_vec();
    for x in 1..=3 {
        source.emit(x).await.unwrap();
    }
    assert_eq!(out.snapshot(), vec![1000, 1010, 1030]);
}

#[tokio::test]
async fn filter_map_and_flatten() {
    let source = Source::new();
    let parsed = source
        .filter_map(|s: &str| s.parse::<u8>().ok())
        .sink_to_vec();
    let chars = source
        .flat_map(|s: &str| s.chars().collect::<Vec<_>>())
        .sink_to_vec();
    for s in ["1", "ab", "2"] {
        source.emit(s).await.unwrap();
    }
    assert_eq!(parsed.snapshot(), vec![1, 2]);
    assert_eq!(chars.snapshot(), vec!['1', 'a', 'b', '2']);

    // Streamz test_flatten_empty: [1, 2], [], [3, 4] -> 1, 2, 3, 4.
    let lists = Source::new();
    let flat = lists.flatten().sink_to_vec();
    for l in [vec![1, 2], vec![], vec![3, 4]] {
        lists.emit(l).await.unwrap();
    }
    assert_eq!(flat.snapshot(), vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn unique_all_time_and_by_key() {
    let source = Source::new();
    let all = source.unique().sink_to_vec();
    let by_parity = source.unique_by_lru(1, |x: &i32| x % 2).sink_to_vec();
    for x in [1, 2, 4, 6, 3, 1] {
        source.emit(x).await.unwrap();
    }
    assert_eq!(all.snapshot(), vec![1, 2, 4, 6, 3]);
    // Streamz test_unique_key: key x % 2, maxsize 1: 1, 2, 4, 6, 3 -> 1, 2, 3 (then 1 is a
    // repeat of the last key).
    assert_eq!(by_parity.snapshot(), vec![1, 2, 3]);
}

#[tokio::test]
async fn unique_lru_history_refreshes_on_hit() {
    // Streamz test_unique_history, maxsize 2.
    let source = Source::new();
    let out = source.unique_lru(2).sink_to_vec();
    for x in [1, 2, 1, 2, 1, 2] {
        source.emit(x).await.unwrap();
    }
    assert_eq!(out.snapshot(), vec![1, 2]);
    for x in [3, 2] {
        source.emit(x).await.unwrap();
    }
    assert_eq!(out.snapshot(), vec![1, 2, 3]);
    source.emit(1).await.unwrap();
    assert_eq!(out.snapshot(), vec![1, 2, 3, 1]);
    // 2 refreshes its position, 3 knocks out 1, then 2 is still remembered.
    for x in [2, 3, 2] {
        source.emit(x).await.unwrap();
    }
    assert_eq!(out.snapshot(), vec![1, 2, 3, 1, 3]);
}

#[tokio::test]
async fn sliding_window_full_and_partial() {
    let source = Source::new();
    let full = source.sliding_window(3).sink_to_vec();
    let partial = source.sliding_window_partial(2).sink_to_vec();
    for x in 0..5 {
        source.emit(x).await.unwrap();
    }
    assert_eq!(
        full.snapshot(),
        vec![vec![0, 1, 2], vec![1, 2, 3], vec![2, 3, 4]]
    );
    assert_eq!(
        partial.snapshot(),
        vec![vec![0], vec![0, 1], vec![1, 2], vec![2, 3], vec![3, 4]]
    );
}

#[tokio::test]
async fn partition_plain_keyed_and_flushed_at_close() {
    let source = Source::new();
    let plain = source.partition(2).sink_to_vec();
    // Streamz: key x % 3 on 0..9 -> (0,3), (1,4), (2,5), (6,9); 7 and 8 stay open.
    let keyed = source.partition_by(2, |x: &i32| x % 3).sink_to_vec();
    for x in 0..10 {
        source.emit(x).await.unwrap();
    }
    assert_eq!(
        plain.snapshot(),
        vec![vec![0, 1], vec![2, 3], vec![4, 5], vec![6, 7], vec![8, 9]]
    );
    assert_eq!(
        keyed.snapshot(),
        vec![vec![0, 3], vec![1, 4], vec![2, 5], vec![6, 9]]
    );
    source.close().await.unwrap();
    // Partial batches flush in the order they were started: 7's batch, then 8's.
    assert_eq!(
        keyed.snapshot(),
        vec![
            vec![0, 3],
            vec![1, 4],
            vec![2, 5],
            vec![6, 9],
            vec![7],
            vec![8]
        ]
    );
}

#[tokio::test]
async fn collect_flush_like_streamz() {
    // Streamz test_collect: flush emits what was collected, possibly nothing.
    let source = Source::new();
    let collected = source.collect();
    let out = collected.sink_to_vec();
    source.emit(1).await.unwrap();
    source.emit(2).await.unwrap();
    assert!(out.is_empty());
    collected.flush().await.unwrap();
    assert_eq!(out.snapshot(), vec![vec![1, 2]]);
    collected.flush().await.unwrap();
    assert_eq!(out.snapshot(), vec![vec![1, 2], vec![]]);
    source.emit(3).await.unwrap();
    assert_eq!(out.len(), 2);
    collected.flush().await.unwrap();
    assert_eq!(out.snapshot(), vec![vec![1, 2], vec![], vec![3]]);
}

#[tokio::test]
async fn union_merges_in_arrival_order() {
    // Streamz test_union.
    let (a, b, c) = (Source::new(), Source::new(), Source::new());
    let out = a.union_all([&*b, &*c]).sink_to_vec();
    a.emit(1).await.unwrap();
    b.emit(2).await.unwrap();
    a.emit(3).await.unwrap();
    c.emit(4).await.unwrap();
    assert_eq!(out.snapshot(), vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn zip_pairs_fifo() {
    // Streamz test_zip.
    let (a, b) = (Source::new(), Source::new());
    let out = a.zip(&b).sink_to_vec();
    a.emit(1).await.unwrap();
    b.emit('a').await.unwrap();
    a.emit(2).await.unwrap();
    b.emit('b').await.unwrap();
    assert_eq!(out.snapshot(), vec![(1, 'a'), (2, 'b')]);
}

#[tokio::test]
async fn zip_same_stream_with_itself() {
    let a = Source::new();
    let out = a.zip(&a).sink_to_vec();
    a.emit(1).await.unwrap();
    a.emit(2).await.unwrap();
    assert_eq!(out.snapshot(), vec![(1, 1), (2, 2)]);
}

#[tokio::test]
async fn zip_input_that_runs_ahead_pends_until_the_other_catches_up() {
    // Streamz test_zip_timeout: maxsize 2, the third emit on `a` pends until `b` emits.
    let (a, b) = (Source::new(), Source::new());
    let out = a.zip_bounded(&b, 2).sink_to_vec();
    a.emit(1).await.unwrap();
    a.emit(2).await.unwrap();
    let mut third = a.emit(3);
    assert!(
        poll_once(&mut third).await.is_pending(),
        "an input more than its bound ahead must pend"
    );
    b.emit('a').await.unwrap();
    third.await.unwrap();
    assert_eq!(out.snapshot(), vec![(1, 'a')]);
    // Nothing was lost: 2 and 3 pair next.
    b.emit('b').await.unwrap();
    b.emit('c').await.unwrap();
    assert_eq!(out.snapshot(), vec![(1, 'a'), (2, 'b'), (3, 'c')]);
}

#[tokio::test]
async fn zip_releases_a_waiting_emit_when_the_other_input_ends() {
    let (a, b) = (Source::new(), Source::<u8>::new());
    let _out = a.zip_bounded(&b, 1).sink_to_vec();
    a.emit(1).await.unwrap();
    let pending = a.emit(2);
    b.close().await.unwrap();
    pending.await.unwrap();
}

#[tokio::test]
async fn combine_latest_and_emit_on() {
    // Streamz test_combine_latest and test_combine_latest_emit_on.
    let (a, b) = (Source::new(), Source::new());
    let either = a.combine_latest(&b).sink_to_vec();
    let on_a = a.combine_latest_on(&b, EmitOn::Left).sink_to_vec();
    let on_b = a.combine_latest_on(&b, EmitOn::Right).sink_to_vec();
    a.emit(1).await.unwrap();
    b.emit('a').await.unwrap();
    a.emit(2).await.unwrap();
    a.emit(3).await.unwrap();
    b.emit('b').await.unwrap();
    a.emit(4).await.unwrap();
    assert_eq!(
        either.snapshot(),
        vec![(1, 'a'), (2, 'a'), (3, 'a'), (3, 'b'), (4, 'b')]
    );
    assert_eq!(on_a.snapshot(), vec![(2, 'a'), (3, 'a'), (4, 'b')]);
    assert_eq!(on_b.snapshot(), vec![(1, 'a'), (3, 'b')]);
}

#[tokio::test]
async fn zip_latest_lossless_first_input() {
    // Streamz test_zip_latest_reverse: b'a', a1, a2, a3, b'b', a4.
    let (a, b) = (Source::new(), Source::new());
    let out = a.zip_latest(&b).sink_to_vec();
    b.emit('a').await.unwrap();
    for x in 1..=3 {
        a.emit(x).await.unwrap();
    }
    b.emit('b').await.unwrap();
    a.emit(4).await.unwrap();
    assert_eq!(out.snapshot(), vec![(1, 'a'), (2, 'a'), (3, 'a'), (4, 'b')]);

    // b'x', b'y', a1, b'z', a2 -> (1,'y'), (2,'z')
    let (a, b) = (Source::new(), Source::new());
    let out = a.zip_latest(&b).sink_to_vec();
    b.emit('x').await.unwrap();
    b.emit('y').await.unwrap();
    a.emit(1).await.unwrap();
    b.emit('z').await.unwrap();
    a.emit(2).await.unwrap();
    assert_eq!(out.snapshot(), vec![(1, 'y'), (2, 'z')]);
}

#[tokio::test]
async fn from_iter_and_from_stream_drive_with_backpressure() {
    let source = Source::from_iter(0..100u32);
    let mut pull = source.filter(|x| x % 10 == 0).to_stream_bounded(2);
    let runner = tokio::spawn(source.run());
    let mut got = Vec::new();
    while let Some(x) = pull.next().await {
        got.push(x);
    }
    runner.await.unwrap().unwrap();
    assert_eq!(got, (0..100).step_by(10).collect::<Vec<_>>());

    let streamed = Source::from_stream(futures::stream::iter(["a", "b"]));
    let out = streamed.sink_to_vec();
    streamed.run().await.unwrap();
    assert_eq!(out.snapshot(), vec!["a", "b"]);
    assert_eq!(streamed.run().await, Err(brooklet::Error::NotRunnable));
}

#[tokio::test]
async fn to_stream_reader_dropped_releases_pending_emits() {
    let source = Source::new();
    let pull = source.to_stream_bounded(1);
    source.emit(1).await.unwrap();
    let pending = source.emit(2);
    assert!(!pending.is_complete());
    drop(pull);
    // Resolves, with the loss: 2 was never read.
    assert!(matches!(pending.await, Err(brooklet::Error::Failed { .. })));
    // Later elements cannot be read: refused at once, never blocking.
    assert!(matches!(
        source.emit(3).await,
        Err(brooklet::Error::Failed { .. })
    ));
}

#[test]
#[should_panic(expected = "sliding_window: the window size must be at least 1")]
fn sliding_window_zero_is_rejected() {
    let _ = Source::<u8>::new().sliding_window(0);
}

#[test]
#[should_panic(expected = "partition: the batch size must be at least 1")]
fn partition_zero_is_rejected() {
    let _ = Source::<u8>::new().partition(0);
}

#[test]
#[should_panic(expected = "zip: the bound must be at least 1")]
fn zip_bound_zero_is_rejected() {
    let a = Source::<u8>::new();
    let _ = a.zip_bounded(&a, 0);
}

#[test]
#[should_panic(expected = "unique: the LRU capacity must be at least 1")]
fn unique_lru_zero_is_rejected() {
    let _ = Source::<u8>::new().unique_lru(0);
}

#[test]
#[should_panic(expected = "to_stream: the capacity must be at least 1")]
fn to_stream_zero_is_rejected() {
    let _ = Source::<u8>::new().to_stream_bounded(0);
}

#[tokio::test]
async fn sink_mut_takes_a_closure_with_state() {
    let source = Source::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let mut running = 0u64;
    source.sink_mut(move |x: u64| {
        running += x;
        tx.send(running).unwrap();
    });
    for x in 1..=4 {
        source.emit(x).await.unwrap();
    }
    let totals: Vec<u64> = rx.try_iter().collect();
    assert_eq!(totals, vec![1, 3, 6, 10]);
}

#[test]
fn sink_mut_sees_elements_from_several_threads_one_at_a_time() {
    let source = Source::new();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = seen.clone();
    let mut local = 0u64;
    source.sink_mut(move |x: u64| {
        local += x;
        total.store(local, std::sync::atomic::Ordering::SeqCst);
    });
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let source = source.clone();
            s.spawn(move || {
                for i in 0..1_000 {
                    drop(source.emit(t * 1_000 + i));
                }
            });
        }
    });
    let expected: u64 = (0..4_000).sum();
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), expected);
}
