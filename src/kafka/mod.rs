//! Kafka in and out (feature `kafka`): a consumer that feeds a graph and a sink that produces
//! from one, both at least once.
//!
//! Kafka is how data enters and leaves a brooklet pipeline across processes, and consumer groups
//! are how a pipeline scales out: run the same program several times with the same group id and
//! the partitions spread over the processes.
//!
//! - [`KafkaSource`] reads topics (as a group member) or fixed partitions and emits a
//!   [`Message`] per record, a decoded value with [`KafkaSourceBuilder::build_with`], or
//!   batches of messages with [`KafkaSourceBuilder::build_batched`]. Every message carries an
//!   acknowledgement token (a batch carries those of all its messages); a partition's offset is committed only past a
//!   contiguous run of messages the graph is done with, so a crash never loses a message (some
//!   may be processed twice). A message whose processing failed stops the source before it,
//!   or goes to a dead-letter topic ([`OnFailure`]); it is never committed silently. While the
//!   graph is slow, the source pauses its partitions and keeps polling, so it stays in its
//!   group.
//! - [`Stream::to_kafka`](crate::Stream::to_kafka) produces a [`Record`] per element. Emits
//!   pend while the producer's queue is full; the tokens of an element are released only when
//!   its record was delivered; records that cannot be delivered go to an error side output;
//!   `close()` waits for every delivery.
//!
//! Bounds a deployment can rely on (all are settings; defaults given):
//!
//! - Memory of a source: the prefetch queue, `queued.max.messages.kbytes` for the whole
//!   consumer (default 4 MiB), which a fetch may overshoot by up to
//!   `fetch.message.max.bytes` (default 1 MiB) per partition; plus the messages inside the
//!   graph, bounded by its operators' capacities.
//! - Memory of a sink: its queue of elements ([`ProducerConfig::capacity`], default 1,024)
//!   and the records awaiting delivery ([`ProducerConfig::in_flight`], default 10,000).
//! - Startup of a source: `run` fails within
//!   [`startup_timeout`](KafkaSourceBuilder::startup_timeout) (default 30 s) when the brokers
//!   do not answer or a topic or partition does not exist.
//! - A topic deleted while a source reads it: once the consumer reports it unknown (at a
//!   failed fetch or the next metadata refresh, `topic.metadata.refresh.interval.ms`) and it
//!   stays missing for the startup timeout, `run` commits what is done and fails naming it.
//!   (Some brokers answer such a fetch with a malformed metadata entry that crashes
//!   librdkafka 2.12.1 first; the process dies and, on restart, nothing done is lost.)
//! - A broker restart: the sink keeps its records (and their tokens) until the broker is back
//!   or `message.timeout.ms` passes. A broker that comes back without the topics it had (one
//!   that keeps them in memory) has made librdkafka 2.12.1 crash while it refreshed its
//!   metadata; run a pipeline under a supervisor that starts it again: nothing done is lost,
//!   and what was not committed is read again.
//! - Size of a record: one over the producer's `message.max.bytes` (default 1,000,000
//!   bytes) goes to the sink's error output with its size and the limit.
//! - Delivery of a sink: a record that cannot be delivered fails after `message.timeout.ms`
//!   (default 30 s), so `close()` returns within about that time after the last emit.
//! - Stop of a source: the graph drains, dead-letter writes are flushed (at most 60 s), then
//!   the final commit and leaving the group run on a blocking thread.
//!
//! Both are built on [`rdkafka`] (re-exported here), which bundles librdkafka. The examples
//! below run against librdkafka's in-process mock cluster, so they need no broker; give a real
//! broker's address in a program.
//!
//! ```
//! use std::time::Duration;
//! use brooklet::Source;
//! use brooklet::kafka::{KafkaSource, ProducerConfig, Record};
//! use brooklet::kafka::rdkafka::mocking::MockCluster;
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = MockCluster::new(1)?;
//! let brokers = cluster.bootstrap_servers();
//! cluster.create_topic("in", 1, 1)?;
//! cluster.create_topic("out", 1, 1)?;
//!
//! let producer = Source::new();
//! producer.to_kafka(ProducerConfig::new(&brokers), |n: u32| Record::to("in").payload(n.to_string()))?;
//! for n in 1..=5 {
//!     producer.emit(n).await?;
//! }
//! producer.close().await?; // every record delivered
//!
//! // in -> square -> out, committed as it goes.
//! let source = KafkaSource::builder(&brokers, "squares")
//!     .partition("in", 0)
//!     .build_with(|m| m.payload_str().unwrap_or("").parse::<u64>())?;
//! let squares = source.map(|n| n * n);
//! squares.to_kafka(ProducerConfig::new(&brokers), |sq: u64| Record::to("out").payload(sq.to_string()))?;
//! let seen = squares.sink_to_vec();
//! let run = tokio::spawn(source.run());
//! tokio::time::timeout(Duration::from_secs(30), async {
//!     while seen.snapshot().len() < 5 {
//!         tokio::time::sleep(Duration::from_millis(10)).await;
//!     }
//! })
//! .await?;
//! source.stop();
//! run.await??; // drains the graph, then commits
//! assert_eq!(seen.snapshot(), vec![1, 4, 9, 16, 25]);
//! # Ok(()) }
//! ```

mod failure;
mod message;
mod offsets;
mod sink;
mod source;

pub use failure::OnFailure;
pub use message::{Bytes, DecodeError, Message};
pub use rdkafka;
pub use sink::{DeliveryError, KafkaSink, ProducerConfig, Record};
pub use source::{KafkaSource, KafkaSourceBuilder};

use crate::Error;

/// An [`Error::Failed`] for a Kafka node.
fn failed(node: &str, message: impl Into<String>) -> Error {
    Error::Failed {
        node: node.to_string(),
        message: message.into(),
    }
}
