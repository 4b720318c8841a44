//! Topology changes and graph lifetimes: `connect` / `disconnect` churn, long feedback loops,
//! dropping source handles, `try_emit`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::window::Window;
use brooklet::{Error, Source, TryEmitError};
use futures::StreamExt;
use futures::executor::block_on;

/// Counts how many values are alive.
struct Tracked(Arc<AtomicUsize>);
impl Tracked {
    fn new(live: &Arc<AtomicUsize>) -> Tracked {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked(live.clone())
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A fresh source with a sink that holds a `Tracked` value.
fn tracked_target(live: &Arc<AtomicUsize>, got: &Arc<AtomicUsize>) -> Source<u32> {
    let target = Source::new();
    let held = Tracked::new(live);
    let got = got.clone();
    target.sink(move |_: u32| {
        let _ = &held;
        got.fetch_add(1, Ordering::SeqCst);
    });
    target
}

// ------------------------------------------------------------------ connect / disconnect

#[test]
fn disconnected_targets_are_freed() {
    let live = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(AtomicUsize::new(0));
    let upstream = Source::new();
    let stream = upstream.map(|x: u32| x + 1);
    for _ in 0..10_000 {
        let target = tracked_target(&live, &got);
        stream.connect(&target);
        block_on(upstream.emit(1)).unwrap();
        assert!(stream.disconnect(&target));
        drop(target);
        assert_eq!(
            live.load(Ordering::SeqCst),
            0,
            "a disconnected target leaked"
        );
    }
    assert_eq!(got.load(Ordering::SeqCst), 10_000);
}

#[test]
fn a_connected_target_outlives_its_handle_until_its_upstream_ends() {
    let live = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(AtomicUsize::new(0));
    let upstream = Source::new();
    let target = tracked_target(&live, &got);
    upstream.connect(&target);
    drop(target);
    // The connection is an upstream of the target: it keeps feeding it.
    block_on(upstream.emit(1)).unwrap();
    block_on(upstream.emit(2)).unwrap();
    assert_eq!(got.load(Ordering::SeqCst), 2);
    assert_eq!(live.load(Ordering::SeqCst), 1);
    drop(upstream);
    assert_eq!(live.load(Ordering::SeqCst), 0, "the target leaked");
}

#[test]
fn connecting_the_same_target_twice_is_one_connection() {
    let upstream = Source::new();
    let target = Source::new();
    let seen = target.sink_to_vec();
    upstream.connect(&target);
    upstream.connect(&target);
    block_on(upstream.emit(1)).unwrap();
    assert_eq!(seen.snapshot(), vec![1]);
    assert!(upstream.disconnect(&target));
    assert!(
        !upstream.disconnect(&target),
        "only one connection was made"
    );
    block_on(upstream.emit(2)).unwrap();
    assert_eq!(seen.snapshot(), vec![1]);
    // A connection that makes a cycle is idempotent too.
    let looped = Source::new();
    let counted = looped.sink_to_vec();
    let next = looped.map(|x: u32| x + 1).filter(|x| *x < 3);
    next.connect(&looped);
    next.connect(&looped);
    block_on(looped.emit(0)).unwrap();
    assert_eq!(counted.snapshot(), vec![0, 1, 2]);
}

#[test]
fn reconnecting_after_disconnect_delivers_again() {
    let upstream = Source::new();
    let (a, b) = (Source::new(), Source::new());
    let (seen_a, seen_b) = (a.sink_to_vec(), b.sink_to_vec());
    upstream.connect(&a);
    upstream.connect(&b);
    block_on(upstream.emit(1)).unwrap();
    assert!(upstream.disconnect(&a));
    block_on(upstream.emit(2)).unwrap();
    upstream.connect(&a);
    block_on(upstream.emit(3)).unwrap();
    assert_eq!(seen_a.snapshot(), vec![1, 3]);
    assert_eq!(seen_b.snapshot(), vec![1, 2, 3]);
}

// ------------------------------------------------------------------ feedback loops

/// Runs `f` on a thread with a small stack.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_long_synchronous_feedback_loop_runs_in_constant_stack() {
    const TURNS: u64 = 1_000_000;
    let turns = on_small_stack(|| {
        let source = Source::new();
        let turns = Arc::new(AtomicUsize::new(0));
        let t = turns.clone();
        source.sink(move |_: u64| {
            t.fetch_add(1, Ordering::Relaxed);
        });
        source
            .map(|x| x + 1)
            .filter(|x| *x < TURNS)
            .connect(&source);
        let emit = source.emit(0);
        assert!(emit.is_complete());
        block_on(emit).unwrap();
        turns.load(Ordering::Relaxed) as u64
    });
    assert_eq!(turns, TURNS);
}

#[tokio::test(start_paused = true)]
async fn a_failure_found_by_a_queued_feedback_push_reaches_the_emit_caller() {
    // 3 reaches the buffer only deep inside the loop (as the fourth turn); the failure the
    // buffer's task recorded is reported on that push, and must reach `emit`'s caller.
    let source = Source::new();
    source
        .filter(|x: &u32| *x == 3)
        .buffer(1)
        .sink(|x| assert!(x != 3, "three"));
    source.map(|x| x + 1).filter(|x| *x < 5).connect(&source);
    source.emit(3).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await; // the task panics on 3
    match source.emit(0).await {
        Err(Error::Panicked { message, .. }) => assert_eq!(message, "three"),
        other => panic!("expected the task's failure, got {other:?}"),
    }
    // The loop sent 3 into the buffer again: that panic is reported by `close`.
    assert!(matches!(source.close().await, Err(Error::Panicked { .. })));
}

#[test]
fn a_panic_in_a_queued_feedback_push_leaves_nothing_behind() {
    let source = Source::new();
    let seen = source.sink_to_vec();
    source.sink(|x: u32| assert!(x != 3, "three"));
    // Two feedback edges, so that the queue holds several pushes when 3 panics.
    source
        .filter(|x| *x % 10 < 5)
        .map(|x| x + 1)
        .connect(&source);
    source.filter(|x| *x == 1).map(|_| 100).connect(&source);
    let caught = catch_unwind(AssertUnwindSafe(|| drop(source.emit(0))));
    assert!(caught.is_err(), "the panic reaches the caller");
    assert_eq!(seen.snapshot(), vec![0, 1, 2, 100, 3]);
    // Nothing queued before the panic (101 was) runs on the next emit.
    block_on(source.emit(20)).unwrap();
    assert_eq!(
        seen.snapshot(),
        vec![0, 1, 2, 100, 3, 20, 21, 22, 23, 24, 25]
    );
}

// ------------------------------------------------------------------ dropping source handles

#[tokio::test(start_paused = true)]
async fn dropping_the_last_source_handle_ends_a_to_stream_consumer() {
    let source = Source::new();
    let mut pull = source.map(|x: u32| x * 2).filter(|x| *x > 0).to_stream();
    let keep = (*source).clone(); // a `Stream` handle does not keep the source open
    source.emit(1).await.unwrap();
    drop(source);
    let all = tokio::time::timeout(Duration::from_secs(5), async {
        let mut all = Vec::new();
        while let Some(x) = pull.next().await {
            all.push(x);
        }
        all
    })
    .await
    .expect("the consumer waits forever");
    assert_eq!(all, vec![2]);
    drop(keep);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_source_handle_drains_a_buffer_into_to_stream() {
    let source = Source::new();
    let mut pull = source.buffer(4).map(|x: u32| x + 1).to_stream();
    for x in 0..3 {
        source.emit(x).await.unwrap();
    }
    drop(source);
    let all = tokio::time::timeout(Duration::from_secs(5), pull.by_ref().collect::<Vec<_>>())
        .await
        .expect("the consumer waits forever");
    assert_eq!(all, vec![1, 2, 3]);
}

#[test]
fn dropping_the_last_source_handle_flushes_windows() {
    let source = Source::<(i64, u32)>::new();
    let sums = source
        .window(Window::tumbling(10))
        .timestamp(|e| e.0)
        .sum(|e| e.1)
        .sink_to_vec();
    let batches = source.map(|e| e.1).partition(3).sink_to_vec();
    let clone = source.clone();
    block_on(source.emit((1, 5))).unwrap();
    block_on(source.emit((2, 6))).unwrap();
    drop(source);
    assert!(sums.is_empty(), "a clone still holds the source open");
    drop(clone);
    assert_eq!(sums.len(), 1, "the open window was not flushed");
    assert_eq!(sums.snapshot()[0].value, 11);
    assert_eq!(batches.snapshot(), vec![vec![5, 6]]);
}

#[tokio::test(start_paused = true)]
async fn a_graph_whose_source_handles_are_dropped_is_freed() {
    let live = Arc::new(AtomicUsize::new(0));
    let source = Source::new();
    let held = Tracked::new(&live);
    let pull = source
        .map(move |x: u32| {
            let _ = &held;
            x
        })
        .to_stream();
    source.emit(1).await.unwrap();
    drop(source);
    assert_eq!(live.load(Ordering::SeqCst), 0, "the graph leaked");
    let all = tokio::time::timeout(Duration::from_secs(5), pull.collect::<Vec<_>>())
        .await
        .expect("the consumer waits forever");
    assert_eq!(all, vec![1]);
}

// ------------------------------------------------------------------ try_emit

#[tokio::test(start_paused = true)]
async fn try_emit_hands_elements_back_when_a_buffer_is_full() {
    let source = Source::new();
    let buffered = source.map(|x: u32| x).buffer(2);
    let _reader = buffered.to_stream_bounded(1); // never read
    let (mut accepted, mut full) = (Vec::new(), 0);
    for x in 0..1_000u32 {
        match source.try_emit(x) {
            Ok(emit) => {
                accepted.push(x);
                drop(emit);
            }
            Err(TryEmitError::Full(back)) => {
                assert_eq!(back, x, "the element comes back");
                full += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        tokio::task::yield_now().await; // the buffer's task moves what it can
    }
    // Two in the buffer, two taken by the reader (one over its bound, waiting).
    assert_eq!(accepted, vec![0, 1, 2, 3]);
    assert_eq!(full, 996);
    assert_eq!(buffered.metrics().held, 2);
}

#[tokio::test(start_paused = true)]
async fn dropped_emit_futures_lose_nothing_but_bound_nothing() {
    let source = Source::new();
    let buffered = source.buffer(2);
    let reader = buffered.to_stream_bounded(1);
    for x in 0..1_000u32 {
        drop(source.emit(x));
        tokio::task::yield_now().await;
    }
    assert!(
        buffered.metrics().held > 900,
        "emit always takes the element"
    );
    drop(source);
    let all = tokio::time::timeout(Duration::from_secs(5), reader.collect::<Vec<_>>())
        .await
        .expect("the reader waits forever");
    assert_eq!(all, (0..1_000).collect::<Vec<_>>());
}

#[test]
fn try_emit_never_half_delivers_a_fan_out() {
    let source = Source::new();
    let first = source.map(|x: u32| x + 1).sink_to_vec();
    let mut reader = source.filter(|_| true).to_stream_bounded(1);
    let last = source.sink_to_vec();
    assert!(source.try_emit(1).unwrap().is_complete());
    assert!(matches!(source.try_emit(2), Err(TryEmitError::Full(2))));
    assert_eq!(first.snapshot(), vec![2], "the first branch must not see 2");
    assert_eq!(last.snapshot(), vec![1]);
    assert_eq!(block_on(reader.next()), Some(1));
    assert!(source.try_emit(2).is_ok());
    assert_eq!(first.snapshot(), vec![2, 3]);
    assert_eq!(last.snapshot(), vec![1, 2]);
}

#[test]
fn try_emit_on_a_closed_source_hands_the_element_back() {
    let source = Source::new();
    let seen = source.sink_to_vec();
    block_on(source.close()).unwrap();
    match source.try_emit(String::from("late")) {
        Err(TryEmitError::Closed(x)) => assert_eq!(x, "late"),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(seen.is_empty());
}

#[tokio::test(start_paused = true)]
async fn try_emit_does_not_ask_nodes_behind_a_feedback_edge() {
    // `outer` feeds `inner` forward; `inner` sends back into `outer` over a feedback edge. A
    // full buffer on `outer` refuses `outer`'s elements, not `inner`'s: a push over a feedback
    // edge never waits.
    let (outer, inner) = (Source::new(), Source::new());
    outer.connect(&inner);
    let buffered = outer.buffer(1);
    let _stuck = buffered.to_stream_bounded(1); // never read
    inner.filter(|x: &u32| *x > 100).connect(&outer);
    for x in 0..10 {
        drop(outer.emit(x));
        tokio::task::yield_now().await;
    }
    assert!(matches!(outer.try_emit(10), Err(TryEmitError::Full(10))));
    let emit = inner
        .try_emit(11)
        .expect("nothing bounded on inner's forward path");
    assert!(emit.is_complete());
}

#[tokio::test(start_paused = true)]
async fn attaching_to_a_node_whose_task_still_drains_ends_only_the_new_branch() {
    let source = Source::new();
    let delayed = source.delay(Duration::from_millis(100));
    // `partition` flushes its partial batch when it hears the end: an early end would flush
    // nothing and strand the elements that arrive after it.
    let batches = delayed.partition(10).sink_to_vec();
    for x in 1..=3u32 {
        source.emit(x).await.unwrap();
    }
    let closing = source.close(); // the delay has ended, its task still holds 1, 2 and 3
    let _late = delayed.map(|x| x * 10).sink_to_vec();
    tokio::time::timeout(Duration::from_secs(5), closing)
        .await
        .expect("close did not finish")
        .unwrap();
    assert_eq!(batches.snapshot(), vec![vec![1, 2, 3]]);
}
