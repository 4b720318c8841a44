//! Kafka source and sink against a real Kafka-protocol broker.
//!
//! The broker's address comes from `KAFKA_BROKERS` (`scripts/test.sh` starts one and sets it;
//! by hand: `scripts/kafka.sh start && export KAFKA_BROKERS=$(cat .kafka/brokers)`). Without
//! it these tests fail, on purpose: a Kafka test that passes without a broker tested nothing.
//!
//! Every test uses its own topics and group, short group timeouts, and bounds each wait.
#![cfg(feature = "kafka")]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brooklet::kafka::rdkafka::config::ClientConfig;
use brooklet::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use brooklet::kafka::rdkafka::message::Message as _;
use brooklet::kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use brooklet::kafka::{
    KafkaSink, KafkaSource, KafkaSourceBuilder, OnFailure, ProducerConfig, Record,
};
use brooklet::{Ack, Error, Outcome, Source};
use tokio::time::timeout;

use common::{Process, brokers, create_topic, produce, reader, unique, wait_until};

/// Reads `(key, payload)` of every record of `topic` (all partitions) until `expected` were
/// read, then returns them grouped per partition, in order.
fn read_all(topic: &str, partitions: i32, expected: usize) -> Vec<Vec<(String, String)>> {
    let consumer = reader(topic, partitions);
    let mut out = vec![Vec::new(); partitions as usize];
    let mut n = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while n < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "read only {n} of {expected} records from {topic}"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("read");
            let k = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
            let v = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
            out[m.partition() as usize].push((k, v));
            n += 1;
        }
    }
    out
}

/// The offset committed for `group` on partition `p` of `topic`, if any.
fn committed(group: &str, topic: &str, p: i32) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, p);
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    match got.find_partition(topic, p).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

fn source(group: &str) -> KafkaSourceBuilder {
    KafkaSource::builder(&brokers(), group)
        .set("session.timeout.ms", "2000")
        .set("heartbeat.interval.ms", "500")
        .commit_interval(Duration::from_millis(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_flow_from_source_through_map_to_sink_in_key_order() {
    const N: usize = 100_000;
    const KEYS: usize = 64;
    let input = unique("in");
    let output = unique("out");
    let group = unique("g");
    create_topic(&input, 4).await;
    create_topic(&output, 4).await;
    produce(
        &input,
        (0..N).map(|i| (format!("k{}", i % KEYS), format!("{}", i / KEYS))),
    )
    .await;

    let src = source(&group).topic(&input).build().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let out_topic = output.clone();
    let _sink = src
        .map(move |m| {
            s.fetch_add(1, Ordering::Relaxed);
            let seq: u64 = m.payload_str().unwrap().parse().unwrap();
            (m.key_str().unwrap().to_string(), seq * 10)
        })
        .to_kafka(
            ProducerConfig::new(&brokers()).set("linger.ms", "5"),
            move |(k, v): (String, u64)| Record::to(&out_topic).key(k).payload(v.to_string()),
        )
        .unwrap();
    let run = tokio::spawn(src.run());
    wait_until(
        "every message through the map",
        Duration::from_secs(120),
        || seen.load(Ordering::Relaxed) >= N,
    )
    .await;
    src.stop();
    timeout(Duration::from_secs(60), run)
        .await
        .expect("run did not stop")
        .unwrap()
        .expect("run failed");
    assert_eq!(seen.load(Ordering::Relaxed), N, "nothing seen twice");
    for p in 0..4 {
        assert!(
            committed(&group, &input, p).is_some(),
            "partition {p} committed"
        );
    }

    let parts = read_all(&output, 4, N);
    let total: usize = parts.iter().map(Vec::len).sum();
    assert_eq!(total, N);
    let mut next: HashMap<String, u64> = HashMap::new();
    for part in &parts {
        for (k, v) in part {
            let v: u64 = v.parse().unwrap();
            let expected = next.entry(k.clone()).or_insert(0);
            assert_eq!(v, *expected, "key {k}: records out of order or missing");
            *expected += 10;
        }
    }
    assert_eq!(next.len(), KEYS);
}

/// Runs the group's source on partition 0 of `input` again and checks that it reads exactly
/// the payloads `expected`, from where the group's committed offset left it.
async fn read_again(group: &str, input: &str, expected: std::ops::Range<u32>) {
    let src = source(group).partition(input, 0).build().unwrap();
    let again = src
        .map(|m| m.payload_str().unwrap().parse::<u32>().unwrap())
        .sink_to_vec();
    let run = tokio::spawn(src.run());
    wait_until("the rest of the partition", Duration::from_secs(30), || {
        again.snapshot().len() >= expected.len()
    })
    .await;
    src.stop();
    timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not stop")
        .unwrap()
        .expect("second run");
    assert_eq!(again.snapshot(), expected.collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_stops_the_source_uncommitted_and_a_restart_reprocesses_it() {
    let input = unique("in");
    let group = unique("g");
    create_topic(&input, 1).await;
    produce(&input, (0..10).map(|i| (String::new(), i.to_string()))).await;

    // First run: the element at offset 6 makes the pipeline panic.
    let src = source(&group).partition(&input, 0).build().unwrap();
    let done = src
        .map(|m| {
            let n: u32 = m.payload_str().unwrap().parse().unwrap();
            assert!(n != 6, "cannot process 6");
            n
        })
        .sink_to_vec();
    let result = timeout(Duration::from_secs(30), src.run())
        .await
        .expect("run did not stop");
    match result {
        // The error says which message stopped the source.
        Err(Error::Panicked { message, .. }) => assert!(
            message.contains("cannot process 6") && message.contains(&format!("{input}/0@6")),
            "{message}"
        ),
        other => panic!("expected the panic as an error, got {other:?}"),
    }
    assert_eq!(done.snapshot(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(
        committed(&group, &input, 0),
        Some(6),
        "stops before the failed offset"
    );

    // Second run, same group: starts at the failed message.
    read_again(&group, &input, 6..10).await;
    assert_eq!(committed(&group, &input, 0), Some(10));
}

/// A topic of five numbers, the third of which ("three") does not decode, and a source that
/// reads it as `i64`s.
async fn numbers_with_one_bad(input: &str, group: &str) -> KafkaSource<i64> {
    create_topic(input, 1).await;
    let payloads = ["1", "2", "three", "4", "5"];
    produce(
        input,
        payloads.iter().map(|p| (String::new(), p.to_string())),
    )
    .await;
    source(group)
        .partition(input, 0)
        .build_with(|m| m.payload_str().unwrap_or("").parse::<i64>())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_decode_goes_to_errors_and_the_partition_flows_on() {
    let input = unique("in");
    let group = unique("g");
    let src = numbers_with_one_bad(&input, &group).await;
    let good = src.sink_to_vec();
    let bad = src.errors().sink_to_vec();
    let run = tokio::spawn(src.run());
    wait_until("every message", Duration::from_secs(30), || {
        good.snapshot().len() + bad.snapshot().len() >= 5
    })
    .await;
    src.stop();
    timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not stop")
        .unwrap()
        .expect("run");
    assert_eq!(good.snapshot(), vec![1, 2, 4, 5]);
    let bad = bad.snapshot();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].message().offset(), 2);
    assert_eq!(bad[0].message().payload_str(), Some("three"));
    assert!(bad[0].error().contains("invalid digit"), "{}", bad[0]);
    assert_eq!(
        committed(&group, &input, 0),
        Some(5),
        "the refused message counts as handled"
    );
}

/// With nothing reading `errors()`, a refused message is not handled: as `try_map` does, the
/// source treats it as a failure, and by default stops before it, uncommitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_does_not_decode_with_nothing_on_errors_stops_the_source() {
    let input = unique("in");
    let group = unique("g");
    let src = numbers_with_one_bad(&input, &group).await;
    let good = src.sink_to_vec();
    let result = timeout(Duration::from_secs(60), src.run())
        .await
        .expect("run did not stop");
    let error = result.expect_err("the refused message stops the source");
    let text = error.to_string();
    assert!(
        text.contains(&format!("{input}/0@2")) && text.contains("errors()"),
        "{text}"
    );
    assert_eq!(good.snapshot()[..2], [1, 2]);
    assert_eq!(committed(&group, &input, 0), Some(2), "stopped before it");
}

/// At stop the graph drains before the final commit. A drain longer than the consumer's
/// `max.poll.interval.ms` must not cost the group membership, and with it that commit: the
/// source keeps polling (its partitions paused) while the graph drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_at_stop_longer_than_the_poll_interval_still_commits_everything() {
    const N: usize = 30;
    let input = unique("in");
    let group = unique("g");
    create_topic(&input, 1).await;
    produce(&input, (0..N).map(|i| (String::new(), i.to_string()))).await;
    let src = source(&group)
        .topic(&input)
        .set("max.poll.interval.ms", "2500")
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    // 30 records at 200 ms each: a drain of about 6 s, well past the 2.5 s interval.
    src.buffer(N).sink_async(move |_| {
        let d = d.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            d.fetch_add(1, Ordering::Relaxed);
        }
    });
    let run = tokio::spawn(src.run());
    wait_until("every record buffered", Duration::from_secs(30), || {
        src.metrics().emitted as usize >= N
    })
    .await;
    src.stop();
    timeout(Duration::from_secs(60), run)
        .await
        .expect("run did not stop")
        .unwrap()
        .expect("run");
    assert_eq!(done.load(Ordering::Relaxed), N);
    assert_eq!(committed(&group, &input, 0), Some(N as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_pauses_the_source_without_losing_group_membership() {
    const N: usize = 40;
    let input = unique("in");
    let group = unique("g");
    create_topic(&input, 2).await;
    produce(&input, (0..N).map(|i| (format!("k{i}"), i.to_string()))).await;

    // One element takes 4 s, longer than max.poll.interval.ms: a consumer that stopped
    // polling while it waited would leave the group and be assigned its partitions again.
    let src = source(&group)
        .topic(&input)
        .set("max.poll.interval.ms", "2500")
        .build()
        .unwrap();
    let processed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let p = processed.clone();
    src.sink_async(move |m| {
        let p = p.clone();
        async move {
            let n: usize = m.payload_str().unwrap().parse().unwrap();
            let pause = if n == 5 { 4000 } else { 10 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            p.lock().unwrap().push(n);
        }
    });
    let run = tokio::spawn(src.run());
    wait_until("the slow sink", Duration::from_secs(60), || {
        processed.lock().unwrap().len() >= N
    })
    .await;
    src.stop();
    timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not stop")
        .unwrap()
        .expect("run");
    assert_eq!(src.assignments(), 1, "the consumer stayed in its group");
    let mut got = processed.lock().unwrap().clone();
    assert_eq!(got.len(), N, "no message processed twice");
    got.sort();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    let total: i64 = (0..2)
        .map(|p| committed(&group, &input, p).unwrap_or(0))
        .sum();
    assert_eq!(total, N as i64, "every partition committed to its end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_releases_tokens_only_after_delivery_and_close_flushes() {
    let output = unique("out");
    create_topic(&output, 1).await;
    let source = Source::new();
    let topic = output.clone();
    let sink = source
        .to_kafka(ProducerConfig::new(&brokers()), move |i: u32| {
            Record::to(&topic)
                .key(i.to_string())
                .payload(format!("v{i}"))
                .header("n", i.to_string())
                .timestamp(1_700_000_000_000 + i as i64)
        })
        .unwrap();
    let released = Arc::new(AtomicUsize::new(0));
    for i in 0..1000 {
        let r = released.clone();
        source
            .emit_with_ack(
                i,
                Ack::new(move |o| {
                    assert!(o.is_done(), "{o:?}");
                    r.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .await
            .unwrap();
    }
    timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish")
        .unwrap();
    assert_eq!(released.load(Ordering::SeqCst), 1000);
    assert_eq!(sink.metrics().errors, 0);
    let got = read_all(&output, 1, 1000);
    assert_eq!(got[0][0], ("0".to_string(), "v0".to_string()));
    assert_eq!(got[0][999], ("999".to_string(), "v999".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_record_goes_to_the_error_output_with_its_token() {
    let source = Source::new();
    let missing = unique("missing"); // never created; auto-creation is off
    let sink = source
        .to_kafka(
            ProducerConfig::new(&brokers()).set("message.timeout.ms", "1500"),
            move |s: String| Record::to(&missing).payload(s),
        )
        .unwrap();
    let dead = sink.errors().sink_to_vec();
    let released = Arc::new(AtomicUsize::new(0));
    let r = released.clone();
    source
        .emit_with_ack(
            "lost?".to_string(),
            Ack::new(move |o| {
                assert!(o.is_done(), "handled by the error output: {o:?}");
                r.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .await
        .unwrap();
    timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish")
        .unwrap();
    let dead = dead.snapshot();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record().payload_bytes(), Some(&b"lost?"[..]));
    assert_eq!(sink.metrics().errors, 1);
    assert_eq!(
        released.load(Ordering::SeqCst),
        1,
        "handled by the error output"
    );
}

/// A fresh one-partition topic and a sink into it of records with key `k` and a payload of
/// `n` bytes for element `n`.
async fn sized_records(config: ProducerConfig) -> (String, Source<usize>, KafkaSink) {
    let topic = unique("oversize");
    create_topic(&topic, 1).await;
    let source = Source::new();
    let t = topic.clone();
    let sink = source
        .to_kafka(config, move |n: usize| {
            Record::to(&t).key("k").payload(vec![b'x'; n])
        })
        .unwrap();
    (topic, source, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_size_limit_goes_to_the_error_output_saying_what_to_change() {
    let (topic, source, sink) =
        sized_records(ProducerConfig::new(&brokers()).set("message.max.bytes", "10000")).await;
    let dead = sink.errors().sink_to_vec();
    let (acks, seen) = tokens(3);
    for (n, ack) in [10, 50_000, 20].into_iter().zip(acks) {
        source.emit_with_ack(n, ack).await.unwrap();
    }
    timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish")
        .unwrap();
    let dead = dead.snapshot();
    assert_eq!(dead.len(), 1, "only the oversize record is refused");
    assert_eq!(
        dead[0].record().payload_bytes().map(<[u8]>::len),
        Some(50_000)
    );
    let why = dead[0].error();
    assert!(
        why.contains("50001 bytes") && why.contains("message.max.bytes is 10000"),
        "{why}"
    );
    // The records on either side of it were delivered, in order.
    let got = read_all(&topic, 1, 2);
    let sizes: Vec<usize> = got[0].iter().map(|(_, v)| v.len()).collect();
    assert_eq!(sizes, [10, 20]);
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().all(|(_, o)| o.is_done()),
        "all handled: {seen:?}"
    );
    assert_eq!(seen.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_size_limit_with_no_error_output_makes_close_say_what_to_change() {
    let (_topic, source, _sink) = sized_records(ProducerConfig::new(&brokers())).await;
    let (mut acks, seen) = tokens(1);
    // With the one-byte key: 2,000,000 bytes, twice the default limit.
    source
        .emit_with_ack(1_999_999, acks.pop().unwrap())
        .await
        .unwrap();
    let closed = timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish");
    assert!(
        matches!(&closed, Err(Error::Failed { node, message })
            if node == "to_kafka" && message.contains("2000000 bytes")
                && message.contains("message.max.bytes is 1000000")),
        "{closed:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].1.is_done(), "a refused record is not done");
}

/// Outcomes of tokens, by element number.
type Outcomes = Arc<std::sync::Mutex<Vec<(usize, Outcome)>>>;

/// Tokens of `n` elements and the outcomes they end with.
fn tokens(n: usize) -> (Vec<Ack>, Outcomes) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let acks = (0..n)
        .map(|i| {
            let s = seen.clone();
            Ack::new(move |o| s.lock().unwrap().push((i, o)))
        })
        .collect();
    (acks, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_record_with_no_error_output_fails_its_token_and_close_reports_it() {
    let source = Source::new();
    let missing = unique("missing");
    let _sink = source
        .to_kafka(
            ProducerConfig::new(&brokers()).set("message.timeout.ms", "1500"),
            move |s: String| Record::to(&missing).payload(s),
        )
        .unwrap();
    let (mut acks, seen) = tokens(1);
    source
        .emit_with_ack("lost".to_string(), acks.pop().unwrap())
        .await
        .unwrap();
    let closed = timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish");
    assert!(
        matches!(&closed, Err(Error::Failed { message, .. }) if message.contains("cannot deliver")),
        "{closed:?}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert!(!seen[0].1.is_done(), "an undelivered record is not done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_record_function_fails_that_elements_token_only() {
    let output = unique("out");
    create_topic(&output, 1).await;
    let source = Source::new();
    let topic = output.clone();
    let _sink = source
        .to_kafka(ProducerConfig::new(&brokers()), move |i: u32| {
            assert!(i != 1, "no record for 1");
            Record::to(&topic).payload(i.to_string())
        })
        .unwrap();
    let (acks, seen) = tokens(3);
    for (i, ack) in acks.into_iter().enumerate() {
        // The panic is reported on a later emit or by close.
        let _ = source.emit_with_ack(i as u32, ack).await;
    }
    let _ = timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish");
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by_key(|s| s.0);
    let done: Vec<bool> = seen.iter().map(|s| s.1.is_done()).collect();
    assert_eq!(done, vec![true, false, true]);
    assert_eq!(read_all(&output, 1, 2)[0].len(), 2);
}

/// Ten keyed records (`k0`..`k9`, payloads `0`..`9`) on a fresh `input`, and a source that
/// reads them with the dead-letter policy writing to a fresh `dlq`.
async fn with_dead_letters(input: &str, dlq: &str, group: &str) -> KafkaSource {
    create_topic(input, 1).await;
    create_topic(dlq, 1).await;
    produce(input, (0..10).map(|i| (format!("k{i}"), i.to_string()))).await;
    source(group)
        .partition(input, 0)
        .on_failure(OnFailure::dead_letter(dlq))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_dead_letter_policy_a_failed_message_goes_to_the_dead_letter_topic_and_the_partition_goes_on()
 {
    let (input, dlq, group) = (unique("in"), unique("dlq"), unique("g"));
    // The failure happens on an asynchronous path (a map_async future panics).
    let src = with_dead_letters(&input, &dlq, &group).await;
    let done = src
        .map_async(2, |m| async move {
            let n: u32 = m.payload_str().unwrap().parse().unwrap();
            assert!(n != 3, "cannot process 3");
            n
        })
        .sink_to_vec();
    let run = tokio::spawn(src.run());
    wait_until("the rest of the partition", Duration::from_secs(30), || {
        done.snapshot().len() >= 9
    })
    .await;
    let dead = tokio::task::spawn_blocking({
        let dlq = dlq.clone();
        move || read_all_with_headers(&dlq, 1)
    })
    .await
    .unwrap();
    src.stop();
    timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not stop")
        .unwrap()
        .expect("the source goes on past a dead-lettered message");
    assert_eq!(done.snapshot(), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(dead.len(), 1);
    let (key, payload, headers) = &dead[0];
    assert_eq!((key.as_str(), payload.as_str()), ("k3", "3"));
    let error = headers.get("brooklet.error").expect("error header");
    assert!(error.contains("cannot process 3"), "{error}");
    assert_eq!(
        headers.get("brooklet.origin").unwrap(),
        &format!("{input}/0@3")
    );
    assert_eq!(
        committed(&group, &input, 0),
        Some(10),
        "done once dead-lettered"
    );
}

/// Reads `n` records of partition 0 of `topic`: key, payload and headers.
fn read_all_with_headers(topic: &str, n: usize) -> Vec<(String, String, HashMap<String, String>)> {
    use brooklet::kafka::rdkafka::message::Headers;
    let consumer = reader(topic, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} of {n}",
            out.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("read");
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), text(h.value)))
                        .collect()
                })
                .unwrap_or_default();
            out.push((text(m.key()), text(m.payload()), headers));
        }
    }
    out
}

/// The example binary `name`, built by `cargo test` beside the test binaries.
fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: run through `cargo test --features kafka`",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prediction_example_runs_against_the_broker() {
    let path = example("kafka_prediction");
    let out = Process::spawn(std::process::Command::new(path).env("KAFKA_BROKERS", brokers()))
        .finish(Duration::from_secs(120));
    let stdout = &out.stdout;
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        out.stderr
    );
    for line in [
        "produced 180 readings",
        "made 207 predictions",
        "read 207 predictions",
        "boiler: expected 92.50",
        "chiller: expected 5.50",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}

/// Reads `topic` (all partitions) until every payload prefix `0..n` (payloads are `i:...`) was
/// seen; returns how many records were read in all.
fn read_until_every_input(topic: &str, partitions: i32, n: usize) -> usize {
    let consumer = reader(topic, partitions);
    let mut seen = vec![false; n];
    let (mut missing, mut total) = (n, 0);
    let mut quiet_since = std::time::Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(100)) {
            Some(m) => {
                let m = m.expect("read");
                let payload = std::str::from_utf8(m.payload().unwrap()).unwrap();
                let i: usize = payload.split(':').next().unwrap().parse().unwrap();
                total += 1;
                if !std::mem::replace(&mut seen[i], true) {
                    missing -= 1;
                }
                quiet_since = std::time::Instant::now();
            }
            None if missing == 0 && quiet_since.elapsed() > Duration::from_secs(1) => break,
            None => assert!(
                quiet_since.elapsed() < Duration::from_secs(20),
                "{missing} of {n} inputs never reached {topic}"
            ),
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_killed_at_random_moments_loses_nothing() {
    const N: usize = 20_000;
    const KILLS: usize = 10;
    let input = unique("in");
    let output = unique("out");
    let group = unique("g");
    create_topic(&input, 4).await;
    create_topic(&output, 4).await;
    produce(
        &input,
        (0..N).map(|i| (format!("k{}", i % 97), i.to_string())),
    )
    .await;

    let relay = example("kafka_relay");
    // 250 µs of work per record on 2 workers: a full pass takes about 2.5 s, so kills land
    // while records are in flight.
    let spawn = |idle_ms: &str| {
        Process::spawn(
            std::process::Command::new(&relay)
                .args([input.as_str(), &output, &group, idle_ms, "250"])
                .env("KAFKA_BROKERS", brokers()),
        )
    };
    // Kill moments from a seeded generator; the seed is printed to replay a failure.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    println!("kill seed {seed}");
    let mut rng = seed;
    for _ in 0..KILLS {
        let mut child = spawn("0");
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // A group join takes a few seconds: kill between 0.5 s and 5 s in.
        let after = Duration::from_millis(500 + rng % 4_500);
        tokio::time::sleep(after).await;
        assert!(child.running(), "the relay exited on its own");
        child.kill();
    }
    // Runs that finish the job, each stopping once idle. A run may go idle with part of the
    // partitions only (the killed member stays in the group until its session times out, and
    // the rest comes with the next rebalance), so run again until every input is committed.
    let committed_total = || {
        (0..4)
            .map(|p| committed(&group, &input, p).unwrap_or(0))
            .sum::<i64>()
    };
    for attempt in 1.. {
        let last = spawn("5000");
        let out = last.finish(Duration::from_secs(120));
        assert!(out.status.success(), "{}", out.stderr);
        let done = committed_total();
        println!("final run {attempt}: {done} of {N} inputs committed");
        if done == N as i64 {
            break;
        }
        assert!(attempt < 5, "the input was not consumed to its end");
    }
    let total = tokio::task::spawn_blocking({
        let output = output.clone();
        move || read_until_every_input(&output, 4, N)
    })
    .await
    .unwrap();
    println!(
        "{N} inputs, {total} outputs after {KILLS} kills: {} duplicates",
        total - N
    );
    assert!(total >= N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_of_a_group_share_the_partitions_and_one_leaving_hands_them_over() {
    const N: usize = 20_000;
    let input = unique("in");
    let group = unique("g");
    create_topic(&input, 4).await;
    produce(&input, (0..N).map(|i| (format!("k{i}"), i.to_string()))).await;

    // Each member records what it processed; processing is slowed so that the hand-over
    // happens while records are in flight.
    let member = |seen: Arc<std::sync::Mutex<Vec<usize>>>| {
        let src = source(&group).topic(&input).build().unwrap();
        src.map(move |m| {
            let n: usize = m.payload_str().unwrap().parse().unwrap();
            if n.is_multiple_of(50) {
                std::thread::sleep(Duration::from_millis(2));
            }
            seen.lock().unwrap().push(n);
        })
        .sink(|_| ());
        src
    };
    let seen_a = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_b = Arc::new(std::sync::Mutex::new(Vec::new()));
    let a = member(seen_a.clone());
    let run_a = tokio::spawn(a.run());
    wait_until("a's first assignment", Duration::from_secs(30), || {
        a.assignments() >= 1
    })
    .await;
    let b = member(seen_b.clone());
    let run_b = tokio::spawn(b.run());
    wait_until("both members assigned", Duration::from_secs(30), || {
        b.assignments() >= 1 && !seen_b.lock().unwrap().is_empty()
    })
    .await;
    // A leaves (a clean stop: it commits what is done, its partitions go to B).
    a.stop();
    timeout(Duration::from_secs(30), run_a)
        .await
        .expect("a did not stop")
        .unwrap()
        .expect("a");
    let covered = || {
        let mut all = vec![false; N];
        for &n in seen_a
            .lock()
            .unwrap()
            .iter()
            .chain(seen_b.lock().unwrap().iter())
        {
            all[n] = true;
        }
        all.iter().all(|x| *x)
    };
    // The hand-over itself: the group gives a's partitions to b (a may have finished its own
    // share already, so covering the topic alone would not show it).
    wait_until(
        "b to be assigned a's partitions",
        Duration::from_secs(60),
        || b.assignments() >= 2,
    )
    .await;
    wait_until("b to finish the topic", Duration::from_secs(60), covered).await;
    b.stop();
    timeout(Duration::from_secs(30), run_b)
        .await
        .expect("b did not stop")
        .unwrap()
        .expect("b");
    let (na, nb) = (seen_a.lock().unwrap().len(), seen_b.lock().unwrap().len());
    println!(
        "a processed {na}, b processed {nb}: {} duplicates",
        na + nb - N
    );
    assert!(na > 0 && nb > 0, "both members worked");
    let total: i64 = (0..4)
        .map(|p| committed(&group, &input, p).unwrap_or(0))
        .sum();
    assert_eq!(total, N as i64, "every partition committed to its end");
}

/// An address where nothing listens: a port that was just free.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

fn failed_with(result: &Result<(), Error>, parts: &[&str]) -> bool {
    matches!(result, Err(Error::Failed { node, message })
        if node == "kafka_source" && parts.iter().all(|p| message.contains(p)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_whose_broker_is_unreachable_fails_within_its_startup_timeout() {
    let addr = closed_port();
    for builder in [
        KafkaSource::builder(&addr, "g").topic("t"),
        KafkaSource::builder(&addr, "g").partition("t", 0),
    ] {
        let source = builder
            .startup_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let _seen = source.sink_to_vec();
        let result = timeout(Duration::from_secs(30), source.run())
            .await
            .expect("run hung with an unreachable broker");
        assert!(
            failed_with(&result, &[&addr, "startup_timeout"]),
            "{result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_of_a_missing_topic_or_partition_fails_within_its_startup_timeout() {
    let topic = unique("present");
    create_topic(&topic, 1).await;
    let missing = unique("missing");
    let group = unique("g-missing");
    for (builder, names) in [
        (source(&group).topic(&missing), vec![missing.as_str()]),
        (
            source(&group).partition(&missing, 0),
            vec![missing.as_str()],
        ),
        (
            source(&group).partition(&topic, 3),
            vec![topic.as_str(), "3"],
        ),
        (
            source(&group).topic(&topic).topic(&missing),
            vec![missing.as_str()],
        ),
    ] {
        let source = builder
            .startup_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let _seen = source.sink_to_vec();
        let result = timeout(Duration::from_secs(30), source.run())
            .await
            .expect("run hung on a missing topic");
        let mut parts = names.clone();
        parts.push("does not exist");
        assert!(failed_with(&result, &parts), "{result:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_whose_broker_is_unreachable_fails_its_record_within_the_message_timeout() {
    let addr = closed_port();
    let source = Source::new();
    let _sink = source
        .to_kafka(
            ProducerConfig::new(&addr).set("message.timeout.ms", "1500"),
            |s: String| Record::to("t").payload(s),
        )
        .unwrap();
    source.emit("lost".to_string()).await.unwrap();
    let closed = timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close hung with an unreachable broker");
    assert!(
        matches!(&closed, Err(Error::Failed { message, .. }) if message.contains("cannot deliver")),
        "{closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_the_graph_flushes_at_stop_makes_run_fail_without_panicking() {
    let topic = unique("flush-panic");
    create_topic(&topic, 1).await;
    produce(&topic, [("k".to_string(), "v".to_string())]).await;
    let group = unique("g-flush-panic");
    let source = source(&group).partition(&topic, 0).build().unwrap();
    // The batch holds the message until the graph closes; its flush panics.
    let _out = source
        .partition(1_000)
        .map(|_: Vec<_>| -> u8 { panic!("flush exploded") })
        .sink_to_vec();
    let run = tokio::spawn(source.run());
    wait_until("the message in flight", Duration::from_secs(20), || {
        source.in_flight() == 1
    })
    .await;
    source.stop();
    let result = timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not finish")
        .expect("run panicked");
    assert!(
        matches!(&result, Err(e) if e.to_string().contains("flush exploded")),
        "{result:?}"
    );
    assert_eq!(committed(&group, &topic, 0), None, "nothing was done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_source_emits_full_or_lingering_batches_and_commits_them_once_done() {
    let topic = unique("batched");
    create_topic(&topic, 1).await;
    produce(&topic, (0..10).map(|i| (format!("k{i}"), format!("{i}")))).await;
    let group = unique("g-batched");
    let source = source(&group)
        .partition(&topic, 0)
        .build_batched(4, Duration::from_millis(300))
        .unwrap();
    let seen = source
        .map(|batch| {
            batch
                .iter()
                .map(|m| m.payload_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .sink_to_vec();
    let run = tokio::spawn(source.run());
    // The last messages never fill a batch: only the linger emits them.
    wait_until("every message in a batch", Duration::from_secs(30), || {
        seen.snapshot().iter().map(Vec::len).sum::<usize>() == 10
    })
    .await;
    wait_until("the commit", Duration::from_secs(20), || {
        committed(&group, &topic, 0) == Some(10)
    })
    .await;
    source.stop();
    timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not finish")
        .unwrap()
        .unwrap();
    let batches = seen.snapshot();
    assert!(
        batches.iter().all(|b| !b.is_empty() && b.len() <= 4),
        "{batches:?}"
    );
    let all: Vec<String> = batches.concat();
    assert_eq!(all, (0..10).map(|i| i.to_string()).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_leaves_all_its_messages_uncommitted() {
    let topic = unique("batched-fail");
    create_topic(&topic, 1).await;
    produce(&topic, (0..8).map(|i| (format!("k{i}"), format!("{i}")))).await;
    let group = unique("g-batched-fail");
    // Batches hold 4 messages, emitted only once full (the linger is longer than the test).
    let source = source(&group)
        .partition(&topic, 0)
        .build_batched(4, Duration::from_secs(600))
        .unwrap();
    let _out = source
        .map(|batch| {
            assert!(
                !batch.iter().any(|m| m.payload_str() == Some("5")),
                "the batch with 5 fails"
            );
            batch.len()
        })
        .sink_to_vec();
    let result = timeout(Duration::from_secs(30), source.run())
        .await
        .expect("run did not stop on the failed batch");
    assert!(
        matches!(&result, Err(e) if e.to_string().contains("the batch with 5 fails")),
        "{result:?}"
    );
    assert_eq!(
        committed(&group, &topic, 0),
        Some(4),
        "the first batch is committed, nothing of the failed one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_pattern_passes_the_startup_check_and_reads_matching_topics() {
    let topic = unique("pattern");
    create_topic(&topic, 1).await;
    produce(&topic, [("k".to_string(), "v".to_string())]).await;
    let group = unique("g-pattern");
    let source = source(&group)
        .topic(format!("^{}.*", topic.replace('-', "\\-")))
        .startup_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let seen = source.map(|m| m.topic().to_string()).sink_to_vec();
    let run = tokio::spawn(source.run());
    wait_until("the message", Duration::from_secs(30), || {
        !seen.snapshot().is_empty() || run.is_finished()
    })
    .await;
    source.stop();
    timeout(Duration::from_secs(30), run)
        .await
        .expect("run did not finish")
        .unwrap()
        .unwrap();
    assert_eq!(seen.snapshot(), vec![topic]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_the_source_waits_for_its_brokers_ends_run_soon() {
    let addr = closed_port();
    let source = KafkaSource::builder(&addr, "g")
        .topic("t")
        .startup_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let mut run = Box::pin(source.run());
    // One poll starts the startup check, which then waits for the brokers.
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(run.as_mut().poll(cx))).await;
    assert!(first.is_pending(), "{first:?}");
    source.stop();
    let result = timeout(Duration::from_secs(20), run)
        .await
        .expect("stop was not noticed during startup");
    assert_eq!(result, Ok(()));
}

/// A runtime that shuts down while the sink's records await their delivery reports: those
/// records may never be stored, so their tokens fail; none is reported done.
#[test]
fn records_awaiting_delivery_when_the_runtime_shuts_down_fail_their_tokens() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = closed_port();
    let source = Source::new();
    let (acks, seen) = tokens(3);
    rt.block_on(async {
        let sink = source
            .to_kafka(
                ProducerConfig::new(&addr).set("message.timeout.ms", "60000"),
                |s: String| Record::to("t").payload(s),
            )
            .unwrap();
        for (i, ack) in acks.into_iter().enumerate() {
            source.emit_with_ack(i.to_string(), ack).await.unwrap();
        }
        // One thread: once the sink's queue is empty, its task has handed every record to
        // the producer, where each awaits a delivery report that cannot come.
        timeout(Duration::from_secs(30), async {
            while sink.metrics().held > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the sink never took its elements");
    });
    assert!(seen.lock().unwrap().is_empty(), "released before delivery");
    drop(rt);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "every token ends: {seen:?}");
    assert!(
        seen.iter().all(
            |(_, o)| matches!(o, Outcome::Failed(Error::Failed { node, .. }) if node == "to_kafka")
        ),
        "a record never delivered was reported {seen:?}"
    );
}

/// With the brokers unreachable, the sink holds at most `capacity` queued elements plus
/// `in_flight` records awaiting a report; the next `emit` pends, and when the records time out
/// every token fails and `close()` says so.
#[test]
fn a_sink_that_cannot_deliver_bounds_what_it_holds_and_fails_every_token() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let addr = closed_port();
    let source = Source::new();
    let (mut acks, seen) = tokens(6);
    acks.reverse();
    rt.block_on(async {
        let sink = source
            .to_kafka(
                ProducerConfig::new(&addr)
                    .set("message.timeout.ms", "3000")
                    .capacity(2)
                    .in_flight(3),
                |s: String| Record::to("t").payload(s),
            )
            .unwrap();
        for i in 0..5 {
            timeout(
                Duration::from_secs(30),
                source.emit_with_ack(i.to_string(), acks.pop().unwrap()),
            )
            .await
            .expect("an emit within the bound pended")
            .unwrap();
        }
        // One thread: let the sink's task take what it may (three records in flight).
        for _ in 0..1000 {
            tokio::task::yield_now().await;
        }
        assert_eq!(sink.metrics().held, 2, "two elements wait in the sink's queue");
        let mut sixth = std::pin::pin!(source.emit_with_ack("5".to_string(), acks.pop().unwrap()));
        for _ in 0..1000 {
            assert!(
                futures::FutureExt::now_or_never(sixth.as_mut()).is_none(),
                "an emit past capacity + in_flight did not pend"
            );
            tokio::task::yield_now().await;
        }
        assert!(seen.lock().unwrap().is_empty(), "released before delivery");
        // The records time out; the queued ones are sent and time out in turn.
        let _ = timeout(Duration::from_secs(60), sixth).await.expect("emit hung");
        let closed = timeout(Duration::from_secs(60), source.close())
            .await
            .expect("close hung");
        // Six failures: the first, with the count of the others.
        assert!(
            matches!(&closed, Err(Error::Several { first, more: 5 })
                if matches!(&**first, Error::Failed { message, .. } if message.contains("cannot deliver"))),
            "{closed:?}"
        );
    });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 6, "every token ends: {seen:?}");
    assert!(seen.iter().all(|(_, o)| !o.is_done()), "{seen:?}");
}

/// A token callback that panics when its record is delivered: the panic is reported by
/// `close()`, and the sink goes on delivering (and releasing) the other records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_callback_that_panics_on_delivery_is_reported_and_the_sink_goes_on() {
    let output = unique("out");
    create_topic(&output, 1).await;
    let source = Source::new();
    let topic = output.clone();
    let _sink = source
        .to_kafka(ProducerConfig::new(&brokers()), move |i: u32| {
            Record::to(&topic).payload(i.to_string())
        })
        .unwrap();
    let released = Arc::new(AtomicUsize::new(0));
    for i in 0..100 {
        let r = released.clone();
        let ack = Ack::new(move |o| {
            assert!(i != 10, "callback of element 10");
            assert!(o.is_done(), "{o:?}");
            r.fetch_add(1, Ordering::SeqCst);
        });
        source.emit_with_ack(i, ack).await.unwrap();
    }
    let closed = timeout(Duration::from_secs(30), source.close())
        .await
        .expect("close did not finish");
    assert!(
        matches!(&closed, Err(Error::Panicked { node, message }) if node == "to_kafka" && message.contains("element 10")),
        "{closed:?}"
    );
    assert_eq!(released.load(Ordering::SeqCst), 99);
    assert_eq!(read_all(&output, 1, 100)[0].len(), 100);
}

/// With a dead-letter policy, a dead-letter write that fails (here the record is over the
/// producer's size limit: the error text it carries is too long) stops the source before the
/// failed message, as the stop policy does: nothing at or past it is committed, and the next
/// run reads it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_write_that_fails_stops_the_source_before_the_failed_message() {
    let (input, dlq, group) = (unique("in"), unique("dlq"), unique("g"));
    let src = with_dead_letters(&input, &dlq, &group).await;
    let _done = src
        .map_async(2, |m| async move {
            let n: u32 = m.payload_str().unwrap().parse().unwrap();
            // An error text over the dead-letter producer's 1,000,000-byte limit.
            assert!(n != 3, "cannot process 3: {}", "x".repeat(1_100_000));
            n
        })
        .sink_to_vec();
    let result = timeout(Duration::from_secs(30), src.run())
        .await
        .expect("run did not stop");
    let origin = format!("cannot write {input}/0@3");
    assert!(
        matches!(&result, Err(Error::Failed { node, message })
            if node == "kafka_source" && message.starts_with(&origin) && message.contains("too large")),
        "{}",
        format!("{result:?}").chars().take(300).collect::<String>()
    );
    assert_eq!(
        committed(&group, &input, 0),
        Some(3),
        "stops before the failed offset"
    );

    read_again(&group, &input, 3..10).await;
}

#[test]
#[should_panic(expected = "`to_kafka` runs on a tokio runtime, and there is none here")]
fn a_kafka_sink_built_outside_a_runtime_says_what_is_missing() {
    let source = Source::<String>::new();
    let _ = source.to_kafka(ProducerConfig::new(&closed_port()), |s| {
        Record::to("t").payload(s)
    });
}

/// The sink under its two waits: librdkafka's own queue full (five records at most: the sink
/// retries, nothing is dropped) and the `in_flight` bound reached (two records at most: the
/// sink waits for reports). Every record arrives, in order, and every token is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_whose_queues_fill_up_retries_and_waits_and_delivers_everything() {
    for (name, config) in [
        (
            "queue of 5",
            ProducerConfig::new(&brokers()).set("queue.buffering.max.messages", "5"),
        ),
        ("in_flight 2", ProducerConfig::new(&brokers()).in_flight(2)),
    ] {
        let output = unique("out");
        create_topic(&output, 1).await;
        let source = Source::new();
        let topic = output.clone();
        let sink = source
            .to_kafka(config, move |i: u32| {
                Record::to(&topic).payload(i.to_string())
            })
            .unwrap();
        let (acks, seen) = tokens(300);
        for (i, ack) in acks.into_iter().enumerate() {
            source.emit_with_ack(i as u32, ack).await.unwrap();
        }
        timeout(Duration::from_secs(60), source.close())
            .await
            .expect("close did not finish")
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 300, "{name}");
        assert!(seen.iter().all(|(_, o)| o.is_done()), "{name}: {seen:?}");
        assert_eq!(sink.metrics().errors, 0, "{name}");
        let got: Vec<String> = read_all(&output, 1, 300)[0]
            .iter()
            .map(|(_, v)| v.clone())
            .collect();
        let want: Vec<String> = (0..300).map(|i| i.to_string()).collect();
        assert_eq!(got, want, "{name}");
    }
}
