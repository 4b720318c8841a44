//! The graph core: fan-out, connect / disconnect, feedback loops, lifetimes, errors, threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use brooklet::{Error, Source};

#[tokio::test]
async fn fan_out_follows_creation_order_depth_first() {
    let source = Source::new();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let first = source.map(|x: i32| x + 1);
    first.sink(move |x| l1.lock().unwrap().push(("first", x)));
    first
        .map(|x| x * 100)
        .sink(move |x| l3.lock().unwrap().push(("first-child", x)));
    source.sink(move |x| l2.lock().unwrap().push(("second", x)));
    source.emit(1).await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![("first", 2), ("first-child", 200), ("second", 1)]
    );
}

#[tokio::test]
async fn streamz_basic_fan_out() {
    // Streamz test_basic: b1 = map(inc), b2 = map(double), c = b1.accumulate(add).
    let source = Source::new();
    let b1 = source.map(|x: i32| x + 1);
    let b2 = source.map(|x: i32| x * 2);
    let c = b1.accumulate(0, |a, x| a + x).sink_to_vec();
    let lb = b2.sink_to_vec();
    for x in 0..4 {
        source.emit(x).await.unwrap();
    }
    assert_eq!(c.snapshot(), vec![1, 3, 6, 10]);
    assert_eq!(lb.snapshot(), vec![0, 2, 4, 6]);
}

#[tokio::test]
async fn fibonacci_feedback_loop() {
    // The Streamz recursion example, ended by a filter instead of a rate limit.
    let source = Source::new();
    let sums = source
        .sliding_window(2)
        .map(|w: Vec<u64>| w.iter().sum::<u64>());
    let seen = sums.sink_to_vec();
    sums.filter(|x| *x < 100).connect(&source);
    source.emit(1).await.unwrap();
    assert!(seen.is_empty(), "a full window of 2 needs two seeds");
    source.emit(1).await.unwrap();
    assert_eq!(seen.snapshot(), vec![2, 3, 5, 8, 13, 21, 34, 55, 89, 144]);
}

#[tokio::test]
async fn fibonacci_with_partial_windows_matches_streamz() {
    let source = Source::new();
    let sums = source
        .sliding_window_partial(2)
        .map(|w: Vec<u64>| w.iter().sum::<u64>());
    let seen = sums.sink_to_vec();
    sums.filter(|x| *x < 100).connect(&source);
    source.emit(1).await.unwrap();
    assert_eq!(
        seen.snapshot(),
        vec![1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144]
    );
}

#[tokio::test]
async fn feedback_edge_order_follows_creation_order() {
    // Connecting before the sink is created: the first element sent back runs its whole path
    // before the sink sees the element that produced it, and the elements it sends back are
    // queued and go round once it has returned (a loop does not grow the stack), so the sink
    // sees the seed last. Streamz recurses instead and would give 144, 89, ..., 2, 1.
    let source = Source::new();
    let sums = source
        .sliding_window_partial(2)
        .map(|w: Vec<u64>| w.iter().sum::<u64>());
    sums.filter(|x| *x < 100).connect(&source);
    let seen = sums.sink_to_vec();
    source.emit(1).await.unwrap();
    assert_eq!(
        seen.snapshot(),
        vec![2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 1]
    );
}

#[tokio::test]
async fn connect_and_disconnect_at_run_time() {
    // Streamz test_disconnect.
    let upstream = Source::new();
    let downstream = Source::new();
    let seen = downstream.sink_to_vec();
    upstream.emit(1).await.unwrap();
    upstream.connect(&downstream);
    upstream.emit(2).await.unwrap();
    upstream.emit(3).await.unwrap();
    assert!(upstream.disconnect(&downstream));
    assert!(!upstream.disconnect(&downstream));
    upstream.emit(4).await.unwrap();
    assert_eq!(seen.snapshot(), vec![2, 3]);
    // Reconnecting works again.
    upstream.connect(&downstream);
    upstream.emit(5).await.unwrap();
    assert_eq!(seen.snapshot(), vec![2, 3, 5]);
}

#[tokio::test]
async fn a_source_fed_by_connect_ends_when_its_upstreams_end() {
    let (a, b) = (Source::new(), Source::new());
    let merged = Source::new();
    let batches = merged.partition(10).sink_to_vec();
    a.connect(&merged);
    b.connect(&merged);
    a.emit(1).await.unwrap();
    b.emit(2).await.unwrap();
    a.close().await.unwrap();
    assert!(!merged.is_closed());
    b.close().await.unwrap();
    assert!(merged.is_closed());
    assert_eq!(batches.snapshot(), vec![vec![1, 2]]);
}

#[tokio::test]
async fn union_ends_when_all_inputs_end() {
    let (a, b) = (Source::new(), Source::new());
    let batches = a.union(&b).partition(10).sink_to_vec();
    a.emit(1).await.unwrap();
    b.emit(2).await.unwrap();
    a.close().await.unwrap();
    assert!(batches.is_empty());
    b.close().await.unwrap();
    assert_eq!(batches.snapshot(), vec![vec![1, 2]]);
}

#[tokio::test]
async fn feedback_edge_does_not_keep_a_closed_graph_open() {
    let source = Source::new();
    let sums = source
        .sliding_window(2)
        .map(|w: Vec<u64>| w.iter().sum::<u64>());
    let batches = sums.partition(100).sink_to_vec();
    sums.filter(|x| *x < 10).connect(&source);
    source.emit(1).await.unwrap();
    source.emit(1).await.unwrap();
    source.close().await.unwrap();
    assert!(source.is_closed());
    assert_eq!(batches.snapshot(), vec![vec![2, 3, 5, 8, 13]]);
    assert_eq!(source.emit(1).await, Err(Error::Closed));
}

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

fn feedback_graph(live: &Arc<AtomicUsize>) -> Source<u64> {
    let source = Source::new();
    let held_by_map = Tracked::new(live);
    let held_by_sink = Tracked::new(live);
    let sums = source.sliding_window(2).map(move |w: Vec<u64>| {
        let _ = &held_by_map;
        w.iter().sum::<u64>()
    });
    sums.sink(move |_| {
        let _ = &held_by_sink;
    });
    sums.filter(|x| *x < 1000).connect(&source);
    source
}

#[tokio::test]
async fn a_feedback_loop_is_freed_after_close() {
    let live = Arc::new(AtomicUsize::new(0));
    let source = feedback_graph(&live);
    assert_eq!(live.load(Ordering::SeqCst), 2);
    source.emit(1).await.unwrap();
    source.emit(1).await.unwrap();
    source.close().await.unwrap();
    drop(source);
    assert_eq!(live.load(Ordering::SeqCst), 0, "the loop leaked");
}

#[tokio::test]
async fn a_feedback_loop_is_freed_when_its_source_handles_are_dropped() {
    let live = Arc::new(AtomicUsize::new(0));
    let source = feedback_graph(&live);
    let clone = source.clone();
    source.emit(1).await.unwrap();
    drop(source);
    assert_eq!(live.load(Ordering::SeqCst), 2, "a handle is still alive");
    drop(clone);
    assert_eq!(live.load(Ordering::SeqCst), 0, "the loop leaked");
}

/// A sink that emits back into its own source through a weak handle: the same loop as
/// `connect` makes, freed the same way.
fn weak_feedback_graph(live: &Arc<AtomicUsize>) -> Source<u64> {
    let source = Source::new();
    let back = source.downgrade();
    let held_by_sink = Tracked::new(live);
    source.filter(|x| *x < 1000).sink(move |x| {
        let _ = &held_by_sink;
        if let Some(source) = back.upgrade() {
            drop(source.emit(x * 2));
        }
    });
    source
}

#[tokio::test]
async fn a_loop_through_a_weak_source_handle_is_freed_after_close() {
    let live = Arc::new(AtomicUsize::new(0));
    let source = weak_feedback_graph(&live);
    let seen = source.sink_to_vec();
    source.emit(1).await.unwrap();
    // The emit from the sink runs inside the one that fed it, before the later branch.
    assert_eq!(
        seen.snapshot(),
        (0..11).rev().map(|i| 1 << i).collect::<Vec<u64>>()
    );
    source.close().await.unwrap();
    drop(source);
    assert_eq!(live.load(Ordering::SeqCst), 0, "the loop leaked");
}

#[tokio::test]
async fn a_loop_through_a_weak_source_handle_ends_when_its_handles_are_dropped() {
    let live = Arc::new(AtomicUsize::new(0));
    let source = weak_feedback_graph(&live);
    let weak = source.downgrade();
    let batches = source.partition(100).sink_to_vec();
    source.emit(1).await.unwrap();
    drop(source);
    assert!(weak.upgrade().is_none());
    assert_eq!(live.load(Ordering::SeqCst), 0, "the loop leaked");
    assert_eq!(
        batches.snapshot().concat().len(),
        11,
        "flushed as by close()"
    );
}

#[tokio::test]
async fn a_panic_reaches_the_emit_caller_and_the_graph_keeps_working() {
    let source = Source::new();
    let totals = source
        .map(|x: i32| {
            assert!(x != 13, "unlucky number");
            x
        })
        .accumulate(0, |a, x| a + x);
    let seen = totals.sink_to_vec();
    source.emit(1).await.unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        drop(source.emit(13));
    }));
    let message = caught.unwrap_err();
    assert_eq!(message.downcast_ref::<&str>(), Some(&"unlucky number"));
    source.emit(2).await.unwrap();
    assert_eq!(seen.snapshot(), vec![1, 3]);
}

#[tokio::test]
async fn a_panic_inside_a_stateful_node_leaves_its_state_intact() {
    let source = Source::new();
    let totals = source.accumulate(0, |a: i32, x: i32| {
        assert!(x >= 0, "negative input");
        a + x
    });
    let seen = totals.sink_to_vec();
    source.emit(5).await.unwrap();
    assert!(
        catch_unwind(AssertUnwindSafe(|| {
            drop(source.emit(-1));
        }))
        .is_err()
    );
    source.emit(1).await.unwrap();
    assert_eq!(seen.snapshot(), vec![5, 6]);
    assert_eq!(totals.metrics().errors, 1);
}

#[tokio::test]
async fn close_flushes_and_later_emits_fail() {
    let source = Source::new();
    let batches = source.partition(3).sink_to_vec();
    let collected = source.collect().sink_to_vec();
    source.emit(1).await.unwrap();
    source.close().await.unwrap();
    assert_eq!(batches.snapshot(), vec![vec![1]]);
    assert_eq!(collected.snapshot(), vec![vec![1]]);
    assert_eq!(source.emit(2).await, Err(Error::Closed));
    // Closing twice is fine and flushes nothing more.
    source.close().await.unwrap();
    assert_eq!(batches.len(), 1);
}

#[tokio::test]
async fn dot_export_shows_names_and_feedback_edges() {
    let source = Source::<u64>::new().named("seed");
    let sums = source
        .sliding_window(2)
        .map(|w: Vec<u64>| w.iter().sum::<u64>())
        .named("sum");
    let _sink = sums.sink(|_| ());
    sums.filter(|x| *x < 10).connect(&source);
    let dot = sums.to_dot();
    assert!(dot.starts_with("digraph brooklet {"), "{dot}");
    for label in ["seed", "sliding_window", "sum\\n(map)", "filter", "sink"] {
        assert!(dot.contains(label), "missing {label} in {dot}");
    }
    assert_eq!(dot.matches("->").count(), 5, "{dot}");
    assert_eq!(dot.matches("style=dashed").count(), 1, "{dot}");
}

#[tokio::test]
async fn counters_track_each_node() {
    let source = Source::new();
    let odd = source.filter(|x: &u32| x % 2 == 1);
    let window = odd.sliding_window(3);
    let _sink = window.sink(|_| ());
    for x in 0..10 {
        source.emit(x).await.unwrap();
    }
    let m = odd.metrics();
    assert_eq!((m.received, m.emitted, m.held, m.errors), (10, 5, 0, 0));
    let w = window.metrics();
    assert_eq!((w.received, w.emitted, w.held), (5, 3, 3));
}

#[tokio::test]
async fn a_source_counts_what_it_passes_on_not_what_it_refuses() {
    let upstream = Source::new();
    let inner = Source::new();
    let seen = inner.sink_to_vec();
    upstream.connect(&inner);
    upstream.emit(1u32).await.unwrap();
    inner.emit(2).await.unwrap();
    inner.emit_batch(vec![3, 4]).await.unwrap();
    inner.close().await.unwrap();
    // The closed source refuses what still reaches it through the connection.
    let _ = upstream.emit(5).await;
    let _ = upstream.emit_batch(vec![6, 7]).await;
    assert_eq!(seen.snapshot(), vec![1, 2, 3, 4]);
    let m = inner.metrics();
    assert_eq!((m.received, m.emitted, m.errors), (7, 4, 0));
}

#[test]
fn emitting_from_many_threads_loses_nothing() {
    let source = Source::new();
    let total = source.accumulate(0u64, |a, x: u64| a + x);
    let last = Arc::new(AtomicUsize::new(0));
    let l = last.clone();
    total.sink(move |t| {
        l.fetch_max(t as usize, Ordering::SeqCst);
    });
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let source = source.clone();
            std::thread::spawn(move || {
                for x in 0..10_000u64 {
                    futures::executor::block_on(source.emit(t * 10_000 + x)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n = 40_000u64;
    assert_eq!(last.load(Ordering::SeqCst) as u64, n * (n - 1) / 2);
}

#[test]
fn public_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Source<u8>>();
    check::<brooklet::Stream<u8>>();
    check::<brooklet::Ack>();
    check::<brooklet::Error>();
    check::<brooklet::Sink>();
    check::<brooklet::VecSink<u8>>();
    check::<brooklet::Collect<u8>>();
    check::<brooklet::Pull<u8>>();
    check::<brooklet::Metrics>();
    fn check_send<T: Send>() {}
    check_send::<brooklet::Emit>();
    // A non-Sync element type still gives Send + Sync handles.
    check::<Source<std::cell::Cell<u8>>>();
}

#[tokio::test(start_paused = true)]
async fn a_feedback_loop_through_two_bounded_nodes_does_not_wedge() {
    // buffer -> flat_map (each x < 64 has two children) -> buffer -> back into the source.
    // Both buffers are full most of the time; a push over the feedback edge never waits, so
    // the two tasks cannot end up waiting on each other.
    let source = Source::new();
    let children = source
        .buffer(1)
        .flat_map(|x: u32| {
            if x < 64 {
                vec![2 * x, 2 * x + 1]
            } else {
                vec![]
            }
        })
        .buffer(1);
    let seen = children.sink_to_vec();
    children.connect(&source);
    source.emit(1).await.unwrap();
    let finished = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while seen.len() < 126 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the loop wedged after {} elements",
        seen.len()
    );
    let mut got = seen.snapshot();
    got.sort_unstable();
    assert_eq!(got, (2..128).collect::<Vec<u32>>());
    source.close().await.unwrap();
}
