//! Fan-out: one stream feeding several branches, each at its own pace.
//!
//! Elements reach branches in the order the branches were created. Three branches are
//! synchronous and cost nothing to wait for. The fourth archives readings through a slow
//! asynchronous write (10 ms each) behind a `buffer(2)`: once the buffer is full, `emit`
//! pends until the archive has made room, so the producer slows to the archive's pace
//! instead of queueing without bound. The output shows which emits had to wait.
//!
//! Run with `cargo run --example fan_out`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brooklet::Source;

#[tokio::main]
async fn main() -> Result<(), brooklet::Error> {
    let readings = Source::new();
    let celsius = readings.map(|(sensor, raw): (&'static str, i32)| (sensor, raw as f64 / 10.0));

    // Branch 1: every reading, as it arrives.
    let all = celsius.sink_to_vec();
    // Branch 2: only alarms.
    let alarms = celsius.filter(|(_, c)| *c > 30.0).sink_to_vec();
    // Branch 3: a running maximum.
    let max = celsius
        .accumulate(f64::MIN, |m, (_, c)| m.max(c))
        .sink_to_vec();
    // Branch 4: a slow archive behind a buffer of two.
    let archived = Arc::new(Mutex::new(Vec::new()));
    let archive = archived.clone();
    celsius
        .buffer(2)
        .named("archive queue")
        .sink_async(move |reading| {
            let archive = archive.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await; // a slow write
                archive.lock().unwrap().push(reading);
            }
        });

    let data = [
        ("a", 215),
        ("b", 301),
        ("a", 222),
        ("b", 317),
        ("a", 198),
        ("b", 305),
        ("a", 201),
        ("b", 299),
    ];
    let start = Instant::now();
    let mut waited = 0;
    for (i, reading) in data.into_iter().enumerate() {
        let pending = readings.emit(reading);
        let full = !pending.is_complete();
        pending.await?;
        waited += usize::from(full);
        println!(
            "emit {i}: {}",
            if full {
                "waited for the slow archive (buffer full)"
            } else {
                "accepted at once"
            }
        );
    }
    readings.close().await?;

    println!("all readings: {:?}", all.snapshot());
    println!("alarms:       {:?}", alarms.snapshot());
    println!("running max:  {:?}", max.snapshot());
    println!("archived:     {} readings", archived.lock().unwrap().len());
    println!(
        "{waited} of {} emits waited for the archive; {} readings took {} ms at 10 ms a write",
        data.len(),
        data.len(),
        start.elapsed().as_millis() / 10 * 10,
    );
    Ok(())
}
