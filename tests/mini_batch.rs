//! Mini-batch emitters over processing time: slice alignment, empty slices, an injected clock
//! and batches that say which slice they are. All on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brooklet::window::{
    BatchOptions, Buffered, CountWindow, Emitter, FixedTimeWindow, Poll, RelaxedTimeWindow, Slice,
};
use brooklet::{Ack, Outcome, Source};

fn sleep_ms(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

#[tokio::test(start_paused = true)]
async fn relaxed_windows_can_report_empty_slices() {
    let source = Source::new();
    let batched = source.batch_with(
        RelaxedTimeWindow::new(100).aligned_to_epoch().emit_empty(),
        BatchOptions::new().clock_starting_at(1_000),
    );
    let plain = batched.sink_to_vec();
    let slices = batched.slices().sink_to_vec();
    source.emit('a').await.unwrap();
    sleep_ms(350).await;
    source.emit('b').await.unwrap();
    sleep_ms(100).await;
    assert_eq!(plain.snapshot(), vec![vec!['a'], vec![], vec![], vec!['b']]);
    let spans: Vec<_> = slices
        .snapshot()
        .into_iter()
        .map(|s| (s.start.unwrap(), s.end.unwrap(), s.items))
        .collect();
    assert_eq!(
        spans,
        vec![
            (1_000, 1_100, vec!['a']),
            (1_100, 1_200, vec![]),
            (1_200, 1_300, vec![]),
            (1_300, 1_400, vec!['b']),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn relaxed_windows_stay_silent_on_empty_slices_by_default() {
    let source = Source::new();
    let out = source
        .batch_with(
            RelaxedTimeWindow::new(100),
            BatchOptions::new().clock_starting_at(0),
        )
        .sink_to_vec();
    source.emit(1).await.unwrap();
    sleep_ms(450).await;
    source.emit(2).await.unwrap();
    sleep_ms(100).await;
    assert_eq!(out.snapshot(), vec![vec![1], vec![2]]);
}

#[tokio::test(start_paused = true)]
async fn fixed_windows_align_to_an_origin() {
    let source = Source::new();
    let batched = source.batch_with(
        FixedTimeWindow::new(1_000).aligned_to(250),
        BatchOptions::new().clock_starting_at(10_600),
    );
    let slices = batched.slices().sink_to_vec();
    source.emit('x').await.unwrap(); // in [10_250, 11_250)
    sleep_ms(700).await; // 11_300: that slice ended
    assert_eq!(
        slices.snapshot(),
        vec![Slice {
            start: Some(10_250),
            end: Some(11_250),
            items: vec!['x']
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn the_injected_clock_is_what_the_emitter_sees() {
    struct Record(Arc<Mutex<Vec<(i64, i64)>>>);
    impl Emitter<u8> for Record {
        fn poll(&mut self, buffer: &[Buffered<u8>], now: i64) -> Poll {
            if let Some(b) = buffer.last() {
                self.0.lock().unwrap().push((now, b.arrived));
            }
            Poll {
                discard: (0..buffer.len()).collect(),
                ..Poll::default()
            }
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let source = Source::new();
    let _b = source.batch_with(
        Record(seen.clone()),
        BatchOptions::new().clock_starting_at(5_000),
    );
    source.emit(1).await.unwrap();
    sleep_ms(42).await;
    source.emit(2).await.unwrap();
    tokio::task::yield_now().await;
    source.close().await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![(5_000, 5_000), (5_042, 5_042)]);
}

#[tokio::test(start_paused = true)]
async fn count_batches_have_no_time_slice() {
    let source = Source::new();
    let batched = source.batch(CountWindow::new(2));
    let slices = batched.slices().sink_to_vec();
    for x in 0..3 {
        source.emit(x).await.unwrap();
    }
    source.close().await.unwrap();
    assert_eq!(
        slices.snapshot(),
        vec![
            Slice {
                start: None,
                end: None,
                items: vec![0, 1]
            },
            Slice {
                start: None,
                end: None,
                items: vec![2]
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_token_is_done_once_both_outputs_took_its_batch() {
    let source = Source::new();
    let batched = source.batch(CountWindow::new(1));
    let plain = batched.sink_to_vec();
    let slices = batched.slices().sink_to_vec();
    let outcome = Arc::new(Mutex::new(None));
    let o = outcome.clone();
    source
        .emit_with_ack(7, Ack::new(move |x| *o.lock().unwrap() = Some(x)))
        .await
        .unwrap();
    source.close().await.unwrap();
    assert_eq!(plain.snapshot(), vec![vec![7]]);
    assert_eq!(slices.snapshot().len(), 1);
    assert_eq!(*outcome.lock().unwrap(), Some(Outcome::Done));
}
