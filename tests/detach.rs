//! Taking a branch out of a running graph (`Stream::detach`, Streamz's `destroy`): no element
//! reaches it afterwards, what it held is freed, and nothing upstream waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::{Ack, Outcome, Source};
use futures::executor::block_on;

#[test]
fn a_detached_branch_gets_nothing_more_and_frees_what_it_held() {
    block_on(async {
        let source = Source::new();
        let kept = source.map(|x: Arc<u32>| *x).sink_to_vec();
        let branch = source.map(|x| x);
        let window = branch.sliding_window(10);
        let seen = window.sink_to_vec();
        let element = Arc::new(1);
        source.emit(element.clone()).await.unwrap();
        assert_eq!(Arc::strong_count(&element), 2, "held by the window");
        branch.detach();
        // The sliding window let go of it.
        assert_eq!(Arc::strong_count(&element), 1);
        assert_eq!(window.metrics().held, 0);
        source.emit(Arc::new(2)).await.unwrap();
        assert_eq!(branch.metrics().received, 1);
        assert!(seen.snapshot().is_empty());
        assert_eq!(kept.snapshot(), vec![1, 2]);
        branch.detach(); // again: nothing happens
    });
}

#[test]
fn the_tokens_a_detached_branch_held_are_released_as_done() {
    block_on(async {
        let source = Source::new();
        let branch = source.partition(5);
        let _sink = branch.sink(|_| ());
        let outcome = Arc::new(std::sync::Mutex::new(None));
        let o = outcome.clone();
        let ack = Ack::new(move |out| *o.lock().unwrap() = Some(out));
        source.emit_with_ack(1, ack).await.unwrap();
        assert!(
            outcome.lock().unwrap().is_none(),
            "held in the partial batch"
        );
        branch.detach();
        assert!(matches!(*outcome.lock().unwrap(), Some(Outcome::Done)));
    });
}

#[tokio::test(start_paused = true)]
async fn close_does_not_wait_for_a_detached_branch() {
    let source = Source::new();
    let kept = source.sink_to_vec();
    // A branch that would never finish: its sink waits forever on every element.
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let branch = source.buffer(4);
    let _stuck = branch.sink_async(move |_x: u32| {
        s.fetch_add(1, Ordering::SeqCst);
        futures::future::pending::<()>()
    });
    source.emit(1).await.unwrap();
    source.emit(2).await.unwrap();
    tokio::time::timeout(Duration::from_secs(1), async {
        while started.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the async sink started");
    branch.detach();
    source.emit(3).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), source.close())
        .await
        .expect("close waited for the detached branch")
        .unwrap();
    assert_eq!(kept.snapshot(), vec![1, 2, 3]);
}

#[test]
fn a_join_below_the_branch_waits_only_for_its_other_inputs() {
    block_on(async {
        let a = Source::new();
        let b = Source::new();
        let from_b = b.map(|x: u32| x * 10);
        let merged = a.union(&from_b);
        let batches = merged.partition(100).sink_to_vec();
        b.emit(1).await.unwrap();
        from_b.detach();
        b.emit(2).await.unwrap(); // goes nowhere now
        a.emit(3).await.unwrap();
        // The union stays, and ends when its remaining input does.
        assert!(batches.snapshot().is_empty());
        a.close().await.unwrap();
        assert_eq!(batches.snapshot(), vec![vec![10, 3]]);
    });
}

#[tokio::test(start_paused = true)]
async fn a_zip_whose_partner_branch_is_detached_is_not_wedged() {
    let a = Source::new();
    let b = Source::new();
    let partner = b.map(|x: u32| x);
    let pairs = a.zip_bounded(&partner, 1);
    let seen = pairs.sink_to_vec();
    a.emit(1).await.unwrap();
    let pending = a.emit(2);
    assert!(!pending.is_complete());
    partner.detach();
    tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the emit waiting for the detached partner was wedged")
        .unwrap();
    // No partner will ever come: later elements are dropped, not queued (1 and 2 stay
    // until the zip ends, as when a partner closes).
    a.emit(3).await.unwrap();
    assert_eq!(pairs.metrics().held, 2);
    assert!(seen.snapshot().is_empty());
}

#[test]
fn detaching_a_node_fed_by_a_loop_cuts_the_loop_too() {
    block_on(async {
        let source = Source::new();
        let step = source.filter(|x: &u32| *x < 1_000).map(|x| x + 1);
        let looped = Arc::new(AtomicBool::new(false));
        let l = looped.clone();
        let _watch = step.sink(move |_| l.store(true, Ordering::SeqCst));
        step.connect(&source);
        source.emit(0).await.unwrap();
        assert_eq!(source.metrics().received, 1_001);
        step.detach();
        looped.store(false, Ordering::SeqCst);
        source.emit(0).await.unwrap();
        assert_eq!(source.metrics().received, 1_002, "the loop is gone");
        assert!(!looped.load(Ordering::SeqCst));
    });
}
