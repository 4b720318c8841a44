//! Kafka pipelines killed with SIGKILL lose nothing: through a per-key hopping window, through
//! an out-of-order parallel map, and with three processes sharing a group.
//!
//! The pipelines are the `kafka_windows` example, run as separate processes. The broker's
//! address comes from `KAFKA_BROKERS` (`scripts/test.sh` starts one and sets it; by hand:
//! `scripts/kafka.sh start && export KAFKA_BROKERS=$(cat .kafka/brokers)`). Without it these
//! tests fail, on purpose.
#![cfg(feature = "kafka")]

mod common;

use std::collections::{HashMap, HashSet};

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brooklet::kafka::rdkafka::config::ClientConfig;
use brooklet::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use brooklet::kafka::rdkafka::message::{Headers, Message as _};
use brooklet::kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::process::Command;

use common::{Process, brokers, create_topic, produce, reader, unique};

/// Produces the numbers `0..n` to `topic`, keyed `k{i % keys}`, waiting for every delivery.
async fn produce_numbers(topic: &str, n: usize, keys: usize) {
    produce(
        topic,
        (0..n).map(|i| (format!("k{}", i % keys), i.to_string())),
    )
    .await;
}

/// The sum over `partitions` of the offsets committed for `group` on `topic`.
fn committed_total(group: &str, topic: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// The `kafka_windows` example binary, built by `cargo test` beside the test binaries.
fn pipeline_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join("kafka_windows");
    assert!(
        path.exists(),
        "{} not built: run through `cargo test --features kafka`",
        path.display()
    );
    path
}

/// Input and output topics, the group, and how to start a pipeline process on them.
struct Pipeline {
    mode: &'static str,
    input: String,
    output: String,
    group: String,
    partitions: i32,
    work_us: u64,
    /// Kills land up to this many ms after a process started reading.
    kill_ms: u64,
}

impl Pipeline {
    async fn new(mode: &'static str, partitions: i32, n: usize, keys: usize, work_us: u64) -> Self {
        let p = Pipeline {
            mode,
            input: unique("in"),
            output: unique("out"),
            group: unique("g"),
            partitions,
            work_us,
            kill_ms: 800,
        };
        create_topic(&p.input, partitions).await;
        create_topic(&p.output, partitions).await;
        produce_numbers(&p.input, n, keys).await;
        p
    }

    /// Starts a process that stops once idle for `idle_ms` (0: never).
    fn spawn(&self, idle_ms: u64) -> Process {
        Process::spawn(
            Command::new(pipeline_binary())
                .args([
                    self.mode,
                    &self.input,
                    &self.output,
                    &self.group,
                    &idle_ms.to_string(),
                    &self.work_us.to_string(),
                ])
                .env("KAFKA_BROKERS", brokers()),
        )
    }

    fn committed(&self) -> i64 {
        committed_total(&self.group, &self.input, self.partitions)
    }

    /// Kills a process `kills` times at random moments (from a printed seed), then runs it to the end (stopping once idle) until every input is
    /// committed.
    async fn crash_and_finish(&self, kills: usize, n: usize) {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            | 1;
        println!("kill seed {seed}");
        let mut rng = seed;
        let mut mid_job = 0;
        for kill in 0..kills {
            let mut child = self.spawn(0);
            // Kill between 0 and 0.8 s after it started reading. A kill before would test
            // nothing: a group join takes seconds, and while the last killed member's session
            // runs the new one may get only partitions that are done.
            match child.next_line(Duration::from_secs(15)) {
                Some(line) => assert_eq!(line, "reading"),
                None => {
                    assert!(child.running(), "the pipeline exited on its own");
                    assert_eq!(self.committed(), n as i64, "the pipeline never read");
                    println!("(the job was done after {kill} kills)");
                    child.kill();
                    break;
                }
            }
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            tokio::time::sleep(Duration::from_millis(rng % self.kill_ms)).await;
            assert!(child.running(), "the pipeline exited on its own");
            child.kill();
            let done = self.committed();
            print!("{done} ");
            if 0 < done && done < n as i64 {
                mid_job += 1;
            }
        }
        println!("inputs committed after each kill");
        assert!(mid_job > 0, "no kill landed in the middle of the job");
        // A run may go idle with part of the partitions only (the killed member stays in the
        // group until its session times out), so run again until every input is committed.
        for attempt in 1.. {
            let last = self.spawn(4000);
            let out = last.finish(Duration::from_secs(60));
            assert!(out.status.success(), "{}", out.stderr);
            let done = self.committed();
            println!("final run {attempt}: {done} of {n} inputs committed");
            if done == n as i64 {
                break;
            }
            assert!(attempt < 4, "the input was not consumed to its end");
        }
    }
}

/// One record of an output topic.
struct Out {
    partition: i32,
    key: String,
    payload: String,
    pid: String,
}

/// Reads an output topic from its beginning, a poll at a time.
struct Reader(BaseConsumer);

impl Reader {
    fn new(topic: &str, partitions: i32) -> Self {
        let consumer = reader(topic, partitions);
        Reader(consumer)
    }

    /// The next record, if one comes within 100 ms.
    fn poll(&self) -> Option<Out> {
        let m = self.0.poll(Duration::from_millis(100))?.expect("read");
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        let pid = m
            .headers()
            .and_then(|hs| hs.iter().find(|h| h.key == "pid").map(|h| text(h.value)))
            .unwrap_or_default();
        Some(Out {
            partition: m.partition(),
            key: text(m.key()),
            payload: text(m.payload()),
            pid,
        })
    }

    /// Reads until every input `0..n` is covered by `read` or the records read now (`ids`
    /// gives the inputs a record covers) and nothing came for a second; returns the records
    /// read now.
    fn until_covered(&self, n: usize, read: &[Out], ids: impl Fn(&Out) -> Vec<usize>) -> Vec<Out> {
        let mut seen = vec![false; n];
        let mut missing = n;
        for i in read.iter().flat_map(&ids) {
            if !std::mem::replace(&mut seen[i], true) {
                missing -= 1;
            }
        }
        let mut all = Vec::new();
        let mut quiet_since = Instant::now();
        loop {
            match self.poll() {
                Some(out) => {
                    for i in ids(&out) {
                        if !std::mem::replace(&mut seen[i], true) {
                            missing -= 1;
                        }
                    }
                    all.push(out);
                    quiet_since = Instant::now();
                }
                None if missing == 0 && quiet_since.elapsed() > Duration::from_secs(1) => {
                    return all;
                }
                None => assert!(
                    quiet_since.elapsed() < Duration::from_secs(20),
                    "{missing} of {n} inputs never reached the output"
                ),
            }
        }
    }
}

/// The input a `n:n²` record of the unordered pipeline came from.
fn squared(out: &Out) -> Vec<usize> {
    let (n, sq) = out.payload.split_once(':').expect("n:n²");
    let n: usize = n.parse().unwrap();
    assert_eq!(sq.parse::<usize>().unwrap(), n * n, "{}", out.payload);
    vec![n]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_key_hopping_window_killed_at_random_moments_loses_nothing() {
    const N: usize = 20_000;
    const KEYS: usize = 13;
    // 300 µs of work per record: a full pass takes about 6 s, so kills land while windows
    // are open and results are in flight.
    let mut pipeline = Pipeline::new("window", 4, N, KEYS, 300).await;
    pipeline.kill_ms = 1500;
    pipeline.crash_and_finish(10, N).await;

    // Each result is `start end id...`: windows of 520 ms every 260 ms over event time = id.
    let results = tokio::task::block_in_place(|| {
        Reader::new(&pipeline.output, 4).until_covered(N, &[], |out| {
            let mut words = out.payload.split(' ').map(|w| w.parse::<i64>().unwrap());
            let (start, end) = (words.next().unwrap(), words.next().unwrap());
            assert_eq!(
                (end - start, start.rem_euclid(260)),
                (520, 0),
                "window bounds"
            );
            words
                .map(|id| {
                    assert!(start <= id && id < end, "{id} outside [{start}, {end})");
                    assert_eq!(out.key, format!("k{}", id as usize % KEYS), "key of {id}");
                    id as usize
                })
                .collect()
        })
    });
    // Each input is in two windows; a restart re-emits the windows of what was not committed.
    let mentions: usize = results
        .iter()
        .map(|r| r.payload.split(' ').count() - 2)
        .sum();
    println!(
        "{N} inputs covered by {} window results: {mentions} mentions for {} without crashes",
        results.len(),
        2 * N
    );
    assert!(mentions >= N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_order_parallel_map_killed_at_random_moments_loses_nothing() {
    const N: usize = 20_000;
    // 0 to 2.4 ms of work per record on 4 workers (a full pass takes about 6 s): records
    // finish far out of order, and only the contiguous done prefix of each partition may be
    // committed.
    let pipeline = Pipeline::new("unordered", 4, N, 97, 800).await;
    pipeline.crash_and_finish(10, N).await;
    let total = tokio::task::block_in_place(|| {
        Reader::new(&pipeline.output, 4)
            .until_covered(N, &[], squared)
            .len()
    });
    println!("{N} inputs, {total} outputs: {} duplicates", total - N);
    assert!(total >= N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_split_six_partitions_and_a_killed_ones_share_moves_to_the_others() {
    const N: usize = 30_000;
    const PARTITIONS: i32 = 6;
    // 0 to 6 ms of work per record on 4 workers: each process handles about 1,300 records/s,
    // so the job outlasts the group joins and the kill.
    let pipeline = Pipeline::new("unordered", PARTITIONS, N, 997, 2000).await;
    let mut members: Vec<Process> = (0..3).map(|_| pipeline.spawn(5000)).collect();
    let pids: Vec<String> = members.iter().map(|c| c.id().to_string()).collect();
    let reader = Reader::new(&pipeline.output, PARTITIONS);

    // Wait (bounded) until each of the three has written output: each was assigned some.
    let mut before: Vec<Out> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pids.iter().all(|p| before.iter().any(|o| &o.pid == p)) {
        assert!(
            Instant::now() < deadline,
            "not all three members got partitions"
        );
        if let Some(out) = tokio::task::block_in_place(|| reader.poll()) {
            before.push(out);
        }
    }
    let mut victim = members.pop().unwrap();
    let victim_pid = pids[2].clone();
    victim.kill();
    let killed_at = before.len();
    println!("killed member {victim_pid} after {killed_at} outputs");

    // The two others finish the job, its share included, and stop once idle.
    for member in members {
        let out = member.finish(Duration::from_secs(90));
        assert!(out.status.success(), "{}", out.stderr);
    }
    let done = pipeline.committed();
    if done < N as i64 {
        // A member went idle before the group gave it the killed one's partitions.
        let last = pipeline.spawn(4000);
        last.finish(Duration::from_secs(60));
    }
    assert_eq!(pipeline.committed(), N as i64, "every input committed");

    let rest = tokio::task::block_in_place(|| reader.until_covered(N, &before, squared));
    // Keys keep their partition from input to output (same partitioner, same partition count):
    // the partitions the killed member wrote to are the ones it had read.
    let mut per_member: HashMap<&str, usize> = HashMap::new();
    for o in before.iter().chain(&rest) {
        *per_member.entry(o.pid.as_str()).or_default() += 1;
    }
    let victim_partitions: HashSet<i32> = before
        .iter()
        .filter(|o| o.pid == victim_pid)
        .map(|o| o.partition)
        .collect();
    // Records of the others after the killed member's last one, on its partitions (a
    // partition is read in order).
    let taken_over: usize = victim_partitions
        .iter()
        .map(|&p| {
            let part: Vec<&Out> = before
                .iter()
                .chain(&rest)
                .filter(|o| o.partition == p)
                .collect();
            let last = part.iter().rposition(|o| o.pid == victim_pid).unwrap();
            part[last + 1..].len()
        })
        .sum();
    let total = before.len() + rest.len();
    println!(
        "outputs per member {per_member:?}; the killed member had partitions \
         {victim_partitions:?}, of which others wrote {taken_over} records after the kill; \
         {total} outputs for {N} inputs: {} duplicates",
        total - N
    );
    assert!(pids.iter().all(|p| per_member.get(p.as_str()) > Some(&0)));
    assert!(
        taken_over > 0,
        "the killed member's partitions moved to the others"
    );
    assert!(total >= N);
}
