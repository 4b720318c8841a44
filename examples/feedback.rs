//! A feedback loop: the Fibonacci numbers, computed by feeding a stream back into its source.
//!
//! `sliding_window(2)` holds the last two values, `map` sums them, and `connect` sends the sum
//! back into the source. A `filter` ends the loop. The feedback edge is weak: it never keeps
//! the graph alive, and closing the source tears the whole loop down.
//!
//! Run with `cargo run --example feedback`; with `-- --dot`, it prints only the graph, with
//! each node's counters, as Graphviz DOT (`scripts/render_graphs.sh` turns that into SVG).

use brooklet::Source;

#[tokio::main]
async fn main() -> Result<(), brooklet::Error> {
    let source = Source::new().named("seed");
    let fib = source
        .sliding_window(2)
        .map(|pair: Vec<u64>| pair[0] + pair[1])
        .named("sum");
    let numbers = fib.sink_to_vec();
    fib.filter(|x| *x < 1_000)
        .named("below 1000")
        .connect(&source);

    // Two seeds fill the first window; the loop then runs by itself.
    source.emit(1).await?;
    source.emit(1).await?;
    source.close().await?;

    if std::env::args().any(|a| a == "--dot") {
        print!("{}", source.to_dot_with_metrics());
        return Ok(());
    }
    println!("fibonacci: 1, 1, {:?}", numbers.snapshot());
    println!("\n{}", source.to_dot());
    Ok(())
}
