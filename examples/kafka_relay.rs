//! At least once across crashes: a relay that reads a topic, transforms each record on worker
//! threads (finishing out of order) and writes the results to another topic. Kill it at any
//! moment (even with SIGKILL) and start it again: every input reaches the output at least once,
//! because an input's offset is committed only after the record built from it was delivered.
//!
//! Without arguments it runs a short demonstration on librdkafka's in-process mock cluster.
//! With arguments it relays on the broker given in `KAFKA_BROKERS`, in group `GROUP`, spends
//! `WORK_US` microseconds of work on each record (default 0), and stops once no record arrived
//! for `IDLE_MS` milliseconds (0: never):
//!
//! ```text
//! cargo run --features kafka --example kafka_relay
//! KAFKA_BROKERS=127.0.0.1:9092 cargo run --features kafka --example kafka_relay -- IN OUT GROUP IDLE_MS [WORK_US]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::Source;
use brooklet::kafka::rdkafka::mocking::MockCluster;
use brooklet::kafka::{KafkaSource, ProducerConfig, Record};

/// Relays `input` to `output` until no record arrived for `idle_ms` (0: forever).
async fn relay(
    brokers: &str,
    input: &str,
    output: &str,
    group: &str,
    session_timeout_ms: &str,
    idle_ms: u64,
    work: Duration,
) -> Result<usize, Box<dyn std::error::Error>> {
    let source = KafkaSource::builder(brokers, group)
        .topic(input)
        .set("session.timeout.ms", session_timeout_ms)
        .set("heartbeat.interval.ms", "500")
        .commit_interval(Duration::from_millis(200))
        .build()?;
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let out = output.to_string();
    source
        .map(move |m| {
            counter.fetch_add(1, Ordering::Relaxed);
            m
        })
        // Out of order on purpose: offsets still commit only over contiguous done prefixes.
        .par_map_unordered(2, move |m| {
            if !work.is_zero() {
                std::thread::sleep(work); // stands for real work
            }
            let n: u64 = m.payload_str().unwrap_or("0").parse().unwrap_or(0);
            (m.key().map(<[u8]>::to_vec), format!("{n}:{}", n * n))
        })
        .to_kafka(ProducerConfig::new(brokers), move |(key, value)| {
            let r = Record::to(&out).payload(value);
            match key {
                Some(k) => r.key(k),
                None => r,
            }
        })?;
    let run = tokio::spawn(source.run());
    if idle_ms > 0 {
        let mut last = usize::MAX;
        let mut quiet = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = read.load(Ordering::Relaxed);
            // Quiet only counts once partitions are assigned (a group join takes seconds).
            quiet = if now == last && source.assignments() > 0 {
                quiet + 100
            } else {
                0
            };
            last = now;
            if quiet >= idle_ms {
                break;
            }
        }
        source.stop();
    }
    run.await??;
    Ok(read.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [input, output, group, idle_ms, rest @ ..] = args.as_slice() {
        let brokers = std::env::var("KAFKA_BROKERS")
            .map_err(|_| "set KAFKA_BROKERS to the broker to relay on")?;
        let work = Duration::from_micros(rest.first().map_or(Ok(0), |w| w.parse())?);
        let n = relay(
            &brokers,
            input,
            output,
            group,
            "2000",
            idle_ms.parse()?,
            work,
        )
        .await?;
        println!("relayed {n} records");
        return Ok(());
    }
    if !args.is_empty() {
        return Err("usage: kafka_relay [IN OUT GROUP IDLE_MS [WORK_US]]".into());
    }

    // The demonstration: 1,000 numbers through the relay on the mock cluster.
    let cluster = MockCluster::new(1)?;
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("numbers", 2, 1)?;
    cluster.create_topic("squares", 2, 1)?;
    let producer = Source::new();
    producer.to_kafka(ProducerConfig::new(&brokers), |n: u64| {
        Record::to("numbers")
            .key(format!("k{}", n % 10))
            .payload(n.to_string())
    })?;
    for n in 0..1_000 {
        producer.emit(n).await?;
    }
    producer.close().await?;
    // The mock cluster's group never assigns below a 3000 ms session timeout.
    let n = relay(
        &brokers,
        "numbers",
        "squares",
        "relay",
        "3000",
        1_000,
        Duration::ZERO,
    )
    .await?;
    println!("relayed {n} records from `numbers` to `squares`");
    Ok(())
}
