//! Kafka throughput: brooklet against a hand-written rdkafka loop, on the same broker, in the
//! same run, and a Kafka → word count → Kafka pipeline.
//!
//! Runs only when `KAFKA_BROKERS` is set (otherwise it prints a note and exits): start a
//! broker with `scripts/bench_kafka.sh`, which runs this bench and stops the broker again.
//!
//! * **relay** — `M` records (key `k{i % 1000}`, payload the number `i`) are read from a
//!   4-partition topic, mapped (`i` → `i:2i`) and written to another 4-partition topic:
//!   - `hand_loop`: a `StreamConsumer` receive loop on a tokio task that sends each result
//!     with a `FutureProducer` and keeps the delivery futures, awaits every delivery at the
//!     end, then commits the positions read once.
//!   - `brooklet`: `KafkaSource` → `map` → `to_kafka` (offsets committed as deliveries
//!     complete, every 200 ms), stopped once `M` records were read: `run` returns when every
//!     result is delivered and the final positions are committed.
//!
//!   Both use the same consumer and producer settings (brooklet's defaults, written out for
//!   the hand loop) and a fresh group and output topic; both are timed from their first record
//!   read to their last delivery, so the group join is not counted. Rounds alternate.
//! * **word count** — `LINES` lines of 8 words (from 10,000 words) are read, split into words,
//!   counted (a running count per word) and each `(word, count)` is written to Kafka. Reported
//!   per word (a record) and per CPU second of this process (`/proc/self/stat`, every thread:
//!   librdkafka's included): records/s per core.
//!
//! Run: `KAFKA_BROKERS=host:port cargo bench -p brooklet-benchmarks --bench kafka`, or
//! `scripts/bench_kafka.sh`. `BENCH_KAFKA_MESSAGES` and `BENCH_KAFKA_LINES` change the sizes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brooklet::kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use brooklet::kafka::rdkafka::client::DefaultClientContext;
use brooklet::kafka::rdkafka::config::ClientConfig;
use brooklet::kafka::rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use brooklet::kafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use brooklet::kafka::rdkafka::message::Message as _;
use brooklet::kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use brooklet::kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use brooklet::kafka::{KafkaSource, ProducerConfig, Record};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

const PARTITIONS: i32 = 4;
const ROUNDS: usize = 2;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("bench-{prefix}-{nanos}")
}

/// The consumer settings brooklet's `KafkaSource` uses by default.
fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("queued.max.messages.kbytes", "4096")
        .set("queued.min.messages", "10000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    c
}

/// The producer settings brooklet's `ProducerConfig::new` uses.
fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "30000")
        .set("allow.auto.create.topics", "false")
        .set("reconnect.backoff.max.ms", "1000")
        .set("enable.idempotence", "true");
    c
}

async fn create_topic(brokers: &str, name: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics([&topic], &opts).await.expect("create") {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}

/// Sends `rec`, waiting while librdkafka's queue is full.
async fn send(
    producer: &FutureProducer,
    rec: FutureRecord<'_, [u8], [u8]>,
) -> brooklet::kafka::rdkafka::producer::DeliveryFuture {
    let mut rec = rec;
    loop {
        match producer.send_result(rec) {
            Ok(d) => return d,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                rec = r;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
}

/// Writes `records` to `topic` and waits for every delivery.
async fn fill(brokers: &str, topic: &str, records: impl Iterator<Item = (String, String)>) {
    let producer: FutureProducer = producer_config(brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let mut pending = FuturesUnordered::new();
    for (k, v) in records {
        pending.push(
            send(
                &producer,
                FutureRecord::to(topic)
                    .key(k.as_bytes())
                    .payload(v.as_bytes()),
            )
            .await,
        );
        while pending.len() > 50_000 {
            pending.next().await.unwrap().unwrap().unwrap();
        }
    }
    while let Some(d) = pending.next().await {
        d.unwrap().expect("delivered");
    }
}

/// The hand-written loop: seconds from the first record read to the last delivery (its commit
/// and its clients' shutdown are not timed).
async fn hand_loop(brokers: &str, input: &str, output: &str, m: usize) -> f64 {
    let consumer: StreamConsumer = consumer_config(brokers, &unique("hand")).create().unwrap();
    consumer.subscribe(&[input]).unwrap();
    let producer: FutureProducer = producer_config(brokers).create().unwrap();
    let mut pending = FuturesUnordered::new();
    let mut start = None;
    let mut done = 0;
    let mut positions = HashMap::new();
    for _ in 0..m {
        let msg = consumer.recv().await.expect("read");
        start.get_or_insert_with(Instant::now);
        positions.insert(msg.partition(), msg.offset() + 1);
        let n: u64 = std::str::from_utf8(msg.payload().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let value = format!("{n}:{}", 2 * n);
        let rec = FutureRecord::to(output)
            .key(msg.key().unwrap())
            .payload(value.as_bytes());
        pending.push(send(&producer, rec).await);
        // Collect finished deliveries as they come, without waiting.
        while let Some(Some(d)) = futures::FutureExt::now_or_never(pending.next()) {
            d.unwrap().expect("delivered");
            done += 1;
        }
    }
    while let Some(d) = pending.next().await {
        d.unwrap().expect("delivered");
        done += 1;
    }
    let elapsed = start.unwrap().elapsed().as_secs_f64();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in positions {
        tpl.add_partition_offset(input, p, Offset::Offset(o))
            .unwrap();
    }
    consumer.commit(&tpl, CommitMode::Sync).unwrap();
    assert_eq!(done, m);
    elapsed
}

/// Brooklet: seconds from the first record read to the last delivery (every record read and
/// none in flight; the shutdown in `run` is not timed).
async fn brooklet_relay(brokers: &str, input: &str, output: &str, m: usize) -> f64 {
    let source = KafkaSource::builder(brokers, &unique("brooklet"))
        .topic(input)
        .commit_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let start: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let read = Arc::new(AtomicUsize::new(0));
    let (s, r) = (start.clone(), read.clone());
    let out = output.to_string();
    let sink = source
        .map(move |msg| {
            s.get_or_init(Instant::now);
            r.fetch_add(1, Ordering::Relaxed);
            let n: u64 = msg.payload_str().unwrap().parse().unwrap();
            (msg.key().unwrap().to_vec(), format!("{n}:{}", 2 * n))
        })
        .to_kafka(ProducerConfig::new(brokers), move |(k, v)| {
            Record::to(&out).key(k).payload(v)
        })
        .unwrap();
    let run = tokio::spawn(source.run());
    // Done when every record was read and none is in flight: each one's delivery was
    // reported, as the hand loop's clock stops at its last delivery.
    while read.load(Ordering::Relaxed) < m || source.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.get().unwrap().elapsed().as_secs_f64();
    // Not timed, as the hand loop's final commit and its clients' shutdown are not: the final
    // commit, leaving the group and flushing the producer.
    source.stop();
    run.await.unwrap().expect("run");
    assert_eq!(sink.metrics().errors, 0);
    assert_eq!(read.load(Ordering::Relaxed), m);
    elapsed
}

/// CPU seconds this process has used (every thread), from `/proc/self/stat`.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |x| x.1);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 here.
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().map(|t| t.parse::<f64>().unwrap_or(0.0)).sum()
    });
    ticks / 100.0 // USER_HZ
}

/// Word count: (records, wall seconds, CPU seconds) from the first line read to the last
/// count delivered.
async fn word_count(brokers: &str, input: &str, output: &str, lines: usize) -> (usize, f64, f64) {
    let source = KafkaSource::builder(brokers, &unique("wc"))
        .topic(input)
        .commit_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let start: Arc<OnceLock<(Instant, f64)>> = Arc::new(OnceLock::new());
    let read = Arc::new(AtomicUsize::new(0));
    let words = Arc::new(AtomicUsize::new(0));
    let counts: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let (s, r, w) = (start.clone(), read.clone(), words.clone());
    let out = output.to_string();
    source
        .flat_map(move |msg| {
            s.get_or_init(|| (Instant::now(), cpu_seconds()));
            r.fetch_add(1, Ordering::Relaxed);
            let line = msg.payload_str().unwrap_or("");
            let mut counts = counts.lock().unwrap();
            let counted: Vec<(String, u64)> = line
                .split_whitespace()
                .map(|word| {
                    let c = match counts.get_mut(word) {
                        Some(c) => c,
                        None => counts.entry(word.to_string()).or_default(),
                    };
                    *c += 1;
                    (word.to_string(), *c)
                })
                .collect();
            w.fetch_add(counted.len(), Ordering::Relaxed);
            counted
        })
        .to_kafka(ProducerConfig::new(brokers), move |(word, count)| {
            Record::to(&out).key(word).payload(count.to_string())
        })
        .unwrap();
    let run = tokio::spawn(source.run());
    while read.load(Ordering::Relaxed) < lines {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    source.stop();
    run.await.unwrap().expect("run");
    let (t0, cpu0) = *start.get().unwrap();
    (
        words.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        cpu_seconds() - cpu0,
    )
}

fn main() {
    let Ok(brokers) = std::env::var("KAFKA_BROKERS") else {
        println!("kafka bench skipped: set KAFKA_BROKERS (or run scripts/bench_kafka.sh)");
        return;
    };
    let m = size("BENCH_KAFKA_MESSAGES", 200_000);
    let lines = size("BENCH_KAFKA_LINES", 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let input = unique("relay-in");
        create_topic(&brokers, &input).await;
        fill(
            &brokers,
            &input,
            (0..m).map(|i| (format!("k{}", i % 1000), i.to_string())),
        )
        .await;
        println!("relay: {m} records, {PARTITIONS} partitions");
        let (mut hand, mut brook) = (Vec::new(), Vec::new());
        // `BENCH_KAFKA_ONLY=hand` or `=brooklet` runs one side, once: for instruction
        // profiles (callgrind) of one side's work per record.
        let only = std::env::var("BENCH_KAFKA_ONLY").ok();
        let rounds = if only.is_some() { 1 } else { ROUNDS };
        for round in 0..rounds {
            for first_hand in [round % 2 == 0, round % 2 != 0] {
                if only.as_deref().is_some_and(|o| (o == "hand") != first_hand) {
                    continue;
                }
                let output = unique("relay-out");
                create_topic(&brokers, &output).await;
                if first_hand {
                    let s = hand_loop(&brokers, &input, &output, m).await;
                    println!("  hand_loop  {:>10.0} records/s", m as f64 / s);
                    hand.push(m as f64 / s);
                } else {
                    let s = brooklet_relay(&brokers, &input, &output, m).await;
                    println!("  brooklet   {:>10.0} records/s", m as f64 / s);
                    brook.push(m as f64 / s);
                }
            }
        }
        let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        println!(
            "relay best: hand_loop {:.0}/s, brooklet {:.0}/s, ratio {:.2}",
            best(&hand),
            best(&brook),
            best(&brook) / best(&hand)
        );
        if only.is_some() {
            return;
        }

        let input = unique("wc-in");
        create_topic(&brokers, &input).await;
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let vocabulary: Vec<String> = (0..10_000).map(|i| format!("w{i}")).collect();
        let text: Vec<(String, String)> = (0..lines)
            .map(|i| {
                let line: Vec<&str> = (0..8)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        vocabulary[(rng % 10_000) as usize].as_str()
                    })
                    .collect();
                (format!("l{}", i % 1000), line.join(" "))
            })
            .collect();
        fill(&brokers, &input, text.into_iter()).await;
        let output = unique("wc-out");
        create_topic(&brokers, &output).await;
        let (records, wall, cpu) = word_count(&brokers, &input, &output, lines).await;
        println!(
            "word count: {lines} lines, {records} words in {wall:.2} s ({:.0} words/s) using \
             {cpu:.2} CPU s: {:.0} records/s per core",
            records as f64 / wall,
            records as f64 / cpu
        );
    });
}
