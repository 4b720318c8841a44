//! The Streamz Fibonacci loop: a sliding window of the last two values, summed, fed back into
//! the source through `rate_limit`, so the loop runs at a chosen pace instead of spinning.
//!
//! ```text
//! source ── sliding_window(2) ── map(sum) ──┬── sink (print, stop after STEPS values)
//!    ▲                                      │
//!    └────────── connect ── rate_limit(d) ──┘   (a feedback edge: it keeps nothing alive)
//! ```
//!
//! Run: `cargo run --example rate_limited_feedback`. It prints STEPS values, one every
//! 100 ms, then closes the source: `close()` ends the loop (the feedback edge does not keep
//! the graph open) and resolves once `rate_limit` has drained.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::Source;
use tokio::sync::Notify;
use tokio::time::Instant;

const STEPS: usize = 15;
const PACE: Duration = Duration::from_millis(100);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), brooklet::Error> {
    let start = Instant::now();
    let source = Source::<u64>::new().named("fib");
    let sums = source
        .sliding_window(2)
        .map(|pair: Vec<u64>| pair.iter().sum::<u64>())
        .named("sum");

    let count = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let (c, d) = (count.clone(), done.clone());
    sums.sink(move |x| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= STEPS {
            println!("{:>5} ms  step {n:>2}: {x}", start.elapsed().as_millis());
        }
        if n == STEPS {
            d.notify_one();
        }
    });
    // The feedback edge, paced: each sum goes back into the source at most once per PACE.
    sums.rate_limit(PACE).named("pace").connect(&source);

    println!("{}", source.to_dot());
    source.emit(0).await?;
    source.emit(1).await?;
    done.notified().await;
    source.close().await?;
    println!(
        "closed after {} values in {} ms",
        count.load(Ordering::SeqCst),
        start.elapsed().as_millis()
    );
    Ok(())
}
