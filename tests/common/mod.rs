//! Helpers shared by the Kafka test files: the broker's address, unique names, topics, bounded
//! waits. Each test file uses its own part of them.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use brooklet::kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use brooklet::kafka::rdkafka::client::DefaultClientContext;
use brooklet::kafka::rdkafka::config::ClientConfig;
use brooklet::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use brooklet::kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use brooklet::kafka::rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use brooklet::kafka::rdkafka::types::RDKafkaErrorCode;
use tokio::time::timeout;

/// The broker the test command started (`KAFKA_BROKERS`); without one, the test fails, on
/// purpose, saying how to get one.
pub fn brokers() -> String {
    match std::env::var("KAFKA_BROKERS") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => panic!(
            "KAFKA_BROKERS is not set: these tests need a Kafka-protocol broker. Run \
             scripts/test.sh, or `scripts/kafka.sh start` and `export KAFKA_BROKERS=$(cat \
             .kafka/brokers)`"
        ),
    }
}

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates `name` with `partitions` on the test broker.
pub async fn create_topic(name: &str, partitions: i32) {
    create_topic_at(&brokers(), name, partitions, false).await;
}

/// Creates `name` with `partitions` on `brokers`; with `may_exist`, a topic the broker already
/// has (made by a client's metadata request, say) is fine.
pub async fn create_topic_at(brokers: &str, name: &str, partitions: i32, may_exist: bool) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let res = timeout(
        Duration::from_secs(30),
        admin.create_topics([&topic], &opts),
    )
    .await
    .expect("create_topics timed out")
    .expect("create_topics");
    for r in res {
        if let Err((t, e)) = r
            && !(may_exist && e == RDKafkaErrorCode::TopicAlreadyExists)
        {
            panic!("cannot create topic {t}: {e}");
        }
    }
}

/// Waits (bounded by `limit`) until `done` holds.
pub async fn wait_until(what: &str, limit: Duration, done: impl Fn() -> bool) {
    timeout(limit, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Produces `(key, payload)` pairs to `topic`, waiting for every delivery.
pub async fn produce(topic: &str, records: impl IntoIterator<Item = (String, String)>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("message.timeout.ms", "20000")
        .set("allow.auto.create.topics", "false")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut deliveries = Vec::new();
    for (k, v) in records {
        loop {
            match producer.send_result(FutureRecord::to(topic).key(&k).payload(&v)) {
                Ok(d) => {
                    deliveries.push(d);
                    break;
                }
                Err((e, _)) => {
                    assert!(e.to_string().contains("Queue full"), "produce failed: {e}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    timeout(Duration::from_secs(60), async {
        for d in deliveries {
            d.await.expect("delivery").expect("delivered");
        }
    })
    .await
    .expect("deliveries timed out");
}

/// A consumer of partitions `0..partitions` of `topic` on the test broker, from their
/// beginning, in a group of its own that commits nothing.
pub fn reader(topic: &str, partitions: i32) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    consumer
}

/// A child process of a test: its stdout read line by line on a thread of its own, killed with
/// SIGKILL and reaped when dropped (so a failing test leaves no pipeline running). Every wait
/// is bounded. The waits block their thread, so they are made from a multi-threaded runtime
/// (`block_in_place`).
pub struct Process {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// How a [`Process`] ended, and what it printed.
pub struct Ended {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Process {
    /// Starts `command` with its stdout and stderr piped.
    pub fn spawn(command: &mut std::process::Command) -> Process {
        use std::io::{BufRead, Read};
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Process {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line the process printed, or `None` if it printed none within `limit` (or
    /// closed its stdout).
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        tokio::task::block_in_place(|| self.lines.recv_timeout(limit).ok())
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends SIGKILL and waits (at most 10 s) until the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        self.wait_exit(Duration::from_secs(10))
            .expect("the killed process did not exit within 10 s");
    }

    /// Waits at most `limit` for the process to exit on its own, then returns its status and
    /// everything it printed; panics (killing it) if it did not exit in time.
    pub fn finish(mut self, limit: Duration) -> Ended {
        let status = self
            .wait_exit(limit)
            .unwrap_or_else(|| panic!("the process did not exit within {limit:?}"));
        // The pipes close with the process: read what is left in them.
        let (stdout, stderr) = tokio::task::block_in_place(|| {
            let mut stdout = Vec::new();
            while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                stdout.push(line);
            }
            let stderr = self.stderr.take().map(|t| t.join().unwrap_or_default());
            (stdout, stderr.unwrap_or_default())
        });
        Ended {
            status,
            stdout: stdout.join("\n"),
            stderr,
        }
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        tokio::task::block_in_place(|| {
            loop {
                if let Some(status) = self.child.try_wait().expect("try_wait") {
                    return Some(status);
                }
                if std::time::Instant::now() >= deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
