//! Fan-out: one stream feeding several branches, each at its own pace.
//!
//! Elements reach branches in the order the branches were created. A branch behind a `buffer`
//! runs on a task; `emit` waits for the slowest branch, so the fast one never runs ahead
//! unboundedly.
//!
//! Run with `cargo run --example fan_out`.

use std::time::Duration;

use brooklet::Source;

#[tokio::main]
async fn main() -> Result<(), brooklet::Error> {
    let readings = Source::new();
    let celsius = readings.map(|(sensor, raw): (&'static str, i32)| (sensor, raw as f64 / 10.0));

    // Branch 1: every reading, as it arrives.
    let all = celsius.sink_to_vec();
    // Branch 2: only alarms.
    let alarms = celsius.filter(|(_, c)| *c > 30.0).sink_to_vec();
    // Branch 3: a running maximum per element.
    let max = celsius
        .accumulate(f64::MIN, |m, (_, c)| m.max(c))
        .sink_to_vec();
    // Branch 4: a slow consumer behind a buffer; `emit` paces itself to it.
    let archived = celsius.buffer(4).partition(2).sink_to_vec();

    let data = [("a", 215), ("b", 301), ("a", 222), ("b", 317), ("a", 198)];
    for reading in data {
        readings.emit(reading).await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    readings.close().await?;

    println!("all readings: {:?}", all.snapshot());
    println!("alarms:       {:?}", alarms.snapshot());
    println!("running max:  {:?}", max.snapshot());
    println!("archived:     {:?}", archived.snapshot());
    Ok(())
}
