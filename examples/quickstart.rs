//! The first brooklet program: build a graph, push data through it, read the results.
//!
//! Run with `cargo run --example quickstart`.

use brooklet::Source;

#[tokio::main]
async fn main() -> Result<(), brooklet::Error> {
    // A source is where data enters; every operator adds a node downstream.
    let source = Source::new().named("numbers");
    let totals = source
        .map(|x: u64| x * 2)
        .filter(|x| x % 3 == 0)
        .accumulate(0, |total, x| total + x)
        .named("running total")
        .sink_to_vec();

    // Batches of three, flushed (the last one partial) when the source closes.
    let batches = source.partition(3).sink_to_vec();

    for x in 1..=10 {
        // `emit` pushes through every synchronous node at once; awaiting it is backpressure.
        source.emit(x).await?;
    }
    source.close().await?;

    println!("running totals: {:?}", totals.snapshot());
    println!("batches:        {:?}", batches.snapshot());
    println!("\nthe graph, as Graphviz DOT:\n{}", source.to_dot());
    Ok(())
}
