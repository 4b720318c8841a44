//! At least once across crashes, through a window and through an out-of-order parallel map.
//!
//! Two Kafka pipelines that can be killed at any moment (even with SIGKILL) and started again
//! in the same group without losing an input:
//!
//! - `window`: a per-key hopping event-time window (the event time is the record's number, in
//!   ms) whose results list the numbers they hold. A window holds its events' acknowledgement
//!   tokens until its result is delivered, so an input's offset is committed only once a
//!   window result holding it is in the output topic.
//! - `unordered`: a parallel map on four workers whose records take from 0 to 3 times `WORK_US`
//!   each, so they finish far out of order. Offsets are still committed only over the
//!   contiguous prefix of done records of each partition.
//!
//! Every output record carries a `pid` header: the process that wrote it.
//!
//! Without arguments it runs both on librdkafka's in-process mock cluster. With arguments it
//! runs `MODE` on the broker given in `KAFKA_BROKERS`, in group `GROUP`, spending `WORK_US`
//! microseconds of work on each record (on average), and stops (draining, flushing the open windows and
//! committing) once no record arrived for `IDLE_MS` milliseconds (0: never):
//!
//! ```text
//! cargo run --features kafka --example kafka_windows
//! KAFKA_BROKERS=127.0.0.1:9092 cargo run --features kafka --example kafka_windows -- MODE IN OUT GROUP IDLE_MS [WORK_US]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::Source;
use brooklet::kafka::rdkafka::mocking::MockCluster;
use brooklet::kafka::{KafkaSource, ProducerConfig, Record};
use brooklet::window::Window;

/// Which pipeline to run.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Window,
    Unordered,
}

/// Runs `mode` from `input` to `output` until no record arrived for `idle_ms` (0: forever);
/// returns how many records were read.
async fn run(
    mode: Mode,
    brokers: &str,
    topics: (&str, &str),
    group: &str,
    session_timeout_ms: &str,
    idle_ms: u64,
    work: Duration,
) -> Result<usize, Box<dyn std::error::Error>> {
    let (input, output) = topics;
    let source = KafkaSource::builder(brokers, group)
        .topic(input)
        .set("session.timeout.ms", session_timeout_ms)
        .set("heartbeat.interval.ms", "500")
        .commit_interval(Duration::from_millis(200))
        .build()?;
    let read = Arc::new(AtomicUsize::new(0));
    let counter = read.clone();
    let pid = std::process::id().to_string();
    let out = output.to_string();
    let numbered = source.map(move |m| {
        counter.fetch_add(1, Ordering::Relaxed);
        if mode == Mode::Window && !work.is_zero() {
            std::thread::sleep(work); // stands for real work
        }
        let n: u64 = m.payload_str().unwrap_or("0").parse().unwrap_or(0);
        (m.key_str().unwrap_or("").to_string(), n)
    });
    let results = match mode {
        Mode::Window => numbered
            // Each key's windows close with that key's own events: keys live in different
            // partitions, which are read at different paces.
            .window(Window::hopping(520, 260))
            .timestamp(|r: &(String, u64)| r.1 as i64)
            .key_by(|r| r.0.clone())
            .per_key_clock()
            .collect(|r: &(String, u64)| r.1)
            .map(|w| {
                let ids: Vec<String> = w.value.iter().map(u64::to_string).collect();
                (w.key, format!("{} {} {}", w.start, w.end, ids.join(" ")))
            }),
        Mode::Unordered => numbered.par_map_unordered(4, move |(key, n)| {
            let spend = work * (n % 4) as u32;
            if !spend.is_zero() {
                std::thread::sleep(spend); // stands for real work
            }
            (key, format!("{n}:{}", n * n))
        }),
    };
    results.to_kafka(ProducerConfig::new(brokers), move |(key, value)| {
        Record::to(&out).key(key).payload(value).header("pid", &pid)
    })?;
    let run = tokio::spawn(source.run());
    let mut reading = false;
    let mut last = usize::MAX;
    let mut quiet = 0;
    while !run.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if !reading && source.assignments() > 0 && read.load(Ordering::Relaxed) > 0 {
            // Tells a supervisor (a crash test) that the process is reading.
            println!("reading");
            reading = true;
        }
        if idle_ms > 0 {
            let now = read.load(Ordering::Relaxed);
            // Quiet only counts once partitions are assigned (a group join takes seconds).
            quiet = if now == last && source.assignments() > 0 {
                quiet + 20
            } else {
                0
            };
            last = now;
            if quiet >= idle_ms {
                // Stopping closes the graph: the open windows are emitted, delivered and
                // committed.
                source.stop();
                break;
            }
        }
    }
    run.await??;
    Ok(read.load(Ordering::Relaxed))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [mode, input, output, group, idle_ms, rest @ ..] = args.as_slice() {
        let mode = match mode.as_str() {
            "window" => Mode::Window,
            "unordered" => Mode::Unordered,
            other => return Err(format!("unknown mode {other:?}: window or unordered").into()),
        };
        let brokers =
            std::env::var("KAFKA_BROKERS").map_err(|_| "set KAFKA_BROKERS to the broker")?;
        let work = Duration::from_micros(rest.first().map_or(Ok(0), |w| w.parse())?);
        let topics = (input.as_str(), output.as_str());
        let n = run(
            mode,
            &brokers,
            topics,
            group,
            "2000",
            idle_ms.parse()?,
            work,
        )
        .await?;
        println!("read {n} records");
        return Ok(());
    }
    if !args.is_empty() {
        return Err(
            "usage: kafka_windows [window|unordered IN OUT GROUP IDLE_MS [WORK_US]]".into(),
        );
    }

    // The demonstration: 1,000 numbers through both pipelines on the mock cluster.
    let cluster = MockCluster::new(1)?;
    let brokers = cluster.bootstrap_servers();
    for topic in ["numbers", "windows", "squares"] {
        cluster.create_topic(topic, 2, 1)?;
    }
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
    for (mode, output, name) in [
        (Mode::Window, "windows", "window"),
        (Mode::Unordered, "squares", "unordered"),
    ] {
        let topics = ("numbers", output);
        let n = run(mode, &brokers, topics, name, "3000", 1_000, Duration::ZERO).await?;
        println!("{name}: read {n} records from `numbers`, wrote to `{output}`");
    }
    Ok(())
}
