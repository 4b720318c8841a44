//! Predictions over Kafka, the Faust way: sensor readings come in on a topic, a hopping window
//! (10 s every 1 s) per sensor collects them, a model runs on each closed window in `par_map`,
//! and the predictions go out on another topic. Offsets are committed only once the windows
//! built from a reading have been turned into delivered predictions.
//!
//! With `KAFKA_BROKERS` set, it uses that broker; without, librdkafka's in-process mock
//! cluster, so it runs with no setup:
//!
//! ```text
//! cargo run --features kafka --example kafka_prediction
//! scripts/kafka.sh start && KAFKA_BROKERS=$(cat .kafka/brokers) cargo run --features kafka --example kafka_prediction
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use brooklet::Source;
use brooklet::kafka::rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use brooklet::kafka::rdkafka::client::DefaultClientContext;
use brooklet::kafka::rdkafka::config::ClientConfig;
use brooklet::kafka::rdkafka::mocking::MockCluster;
use brooklet::kafka::{KafkaSource, Message, ProducerConfig, Record};
use brooklet::window::Window;

const SENSORS: [&str; 3] = ["boiler", "chiller", "pump"];
const SECONDS: i64 = 60;
const START: i64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
struct Reading {
    sensor: String,
    ts: i64,
    celsius: f64,
}

#[derive(Clone, Debug)]
struct Prediction {
    sensor: String,
    window_end: i64,
    /// The temperature the model expects 5 s after the window's end.
    celsius_in_5s: f64,
}

/// The model: a least-squares line through the window's readings, extrapolated 5 s ahead.
/// (Stands for a real model: CPU-bound work, hence `par_map`.)
fn predict(sensor: String, window_end: i64, points: &[(i64, f64)]) -> Prediction {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0 as f64).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 as f64 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 as f64 - mx) * (p.1 - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let at = (window_end + 5_000) as f64;
    Prediction {
        sensor,
        window_end,
        celsius_in_5s: my + slope * (at - mx),
    }
}

/// One reading per sensor per second: the boiler heats up, the chiller cools down, the pump
/// stays put.
fn readings() -> impl Iterator<Item = Reading> {
    (0..SECONDS).flat_map(|s| {
        PROFILES.iter().map(move |(sensor, base, per_s)| Reading {
            sensor: sensor.to_string(),
            ts: START + s * 1_000,
            celsius: base + per_s * s as f64,
        })
    })
}

/// Per sensor: temperature at t = 0 and change per second.
const PROFILES: [(&str, f64, f64); 3] = [
    (SENSORS[0], 60.0, 0.5),
    (SENSORS[1], 12.0, -0.1),
    (SENSORS[2], 35.0, 0.0),
];

async fn create_topics(brokers: &str, names: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 2, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for r in admin.create_topics(&topics, &opts).await? {
        r.map_err(|(t, e)| format!("cannot create {t}: {e}"))?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real broker if one is given, else the mock cluster (kept alive for the whole run).
    let mut _cluster = None;
    let (brokers, session_timeout) = match std::env::var("KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => (b, "6000"),
        _ => {
            let cluster = MockCluster::new(1)?;
            let b = cluster.bootstrap_servers();
            _cluster = Some(cluster);
            // The mock cluster's group never assigns below 3000 ms.
            (b, "3000")
        }
    };
    match &_cluster {
        Some(_) => {
            println!("using librdkafka's mock cluster (set KAFKA_BROKERS for a real broker)")
        }
        None => println!("using the broker at {brokers}"),
    }
    let suffix = std::process::id();
    let readings_topic = format!("sensor-readings-{suffix}");
    let predictions_topic = format!("predictions-{suffix}");
    match &_cluster {
        Some(cluster) => {
            cluster.create_topic(&readings_topic, 2, 1)?;
            cluster.create_topic(&predictions_topic, 2, 1)?;
        }
        None => create_topics(&brokers, &[&readings_topic, &predictions_topic]).await?,
    }

    // 1. Put the readings on their topic, keyed by sensor (one sensor, one partition, in order).
    let producer = Source::new();
    let topic = readings_topic.clone();
    producer.to_kafka(ProducerConfig::new(&brokers), move |r: Reading| {
        Record::to(&topic)
            .key(&r.sensor)
            .payload(format!("{},{}", r.ts, r.celsius))
            .timestamp(r.ts)
    })?;
    let mut sent = 0;
    for r in readings() {
        producer.emit(r).await?;
        sent += 1;
    }
    producer.close().await?; // every record delivered
    println!("produced {sent} readings to {readings_topic}");

    // 2. The pipeline: readings → hopping window per sensor → model in par_map → predictions.
    let source = KafkaSource::builder(&brokers, "prediction-service")
        .topic(&readings_topic)
        .set("session.timeout.ms", session_timeout)
        .set("heartbeat.interval.ms", "500")
        .build_with(|m: &Message| -> Result<Reading, String> {
            let text = m.payload_str().ok_or("payload is not UTF-8")?;
            let (ts, celsius) = text.split_once(',').ok_or("expected `ts,celsius`")?;
            Ok(Reading {
                sensor: m.key_str().ok_or("no sensor key")?.to_string(),
                ts: ts.parse().map_err(|e| format!("bad ts: {e}"))?,
                celsius: celsius.parse().map_err(|e| format!("bad value: {e}"))?,
            })
        })?;
    let consumed = Arc::new(AtomicUsize::new(0));
    let counter = consumed.clone();
    let predictions = source
        .map(move |r| {
            counter.fetch_add(1, Ordering::Relaxed);
            r
        })
        .window(Window::hopping(10_000, 1_000))
        .timestamp(|r: &Reading| r.ts)
        .key_by(|r: &Reading| r.sensor.clone())
        // Each sensor's readings are in order within their partition, but partitions are read
        // interleaved: one event clock per sensor, so one partition's progress does not make
        // another's readings late.
        .per_key_clock()
        .collect(|r: &Reading| (r.ts, r.celsius))
        .par_map(2, |w| predict(w.key.clone(), w.end, &w.value));
    let topic = predictions_topic.clone();
    predictions.to_kafka(ProducerConfig::new(&brokers), move |p: Prediction| {
        Record::to(&topic)
            .key(&p.sensor)
            .payload(format!("{},{:.2}", p.window_end, p.celsius_in_5s))
            .timestamp(p.window_end)
    })?;
    let made = Arc::new(AtomicUsize::new(0));
    let m = made.clone();
    predictions.sink(move |_| {
        m.fetch_add(1, Ordering::Relaxed);
    });
    let errors = source.errors().sink_to_vec();

    let run = tokio::spawn(source.run());
    tokio::time::timeout(Duration::from_secs(60), async {
        while consumed.load(Ordering::Relaxed) < sent {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .map_err(|_| "the pipeline did not read every reading within 60 s")?;
    // Every reading is in: stop. Closing flushes the open windows, runs the model on them,
    // waits for every prediction's delivery, then commits.
    source.stop();
    run.await??;
    let made = made.load(Ordering::Relaxed);
    assert_eq!(
        made,
        SENSORS.len() * 69,
        "one prediction per sensor and window"
    );
    println!(
        "consumed {} readings ({} undecodable), made {made} predictions",
        consumed.load(Ordering::Relaxed),
        errors.snapshot().len()
    );

    // 3. Read the predictions back from their topic.
    let reader = KafkaSource::builder(&brokers, "prediction-reader")
        .partition(&predictions_topic, 0)
        .partition(&predictions_topic, 1)
        .build()?;
    let read = reader.sink_to_vec();
    let run = tokio::spawn(reader.run());
    tokio::time::timeout(Duration::from_secs(30), async {
        while read.snapshot().len() < made {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .map_err(|_| "not every prediction reached the output topic")?;
    reader.stop();
    run.await??;
    let read = read.snapshot();
    println!("read {} predictions from {predictions_topic}", read.len());
    for sensor in SENSORS {
        let n = read.iter().filter(|m| m.key_str() == Some(sensor)).count();
        // 60 s of readings touch 69 windows of 10 s every 1 s (9 of them partial at the start).
        println!("{sensor}: {n} predictions");
    }
    for sensor in SENSORS {
        // The last full window of the run: [50 s, 60 s).
        let end = START + SECONDS * 1_000;
        let last = read.iter().find(|m| {
            m.key_str() == Some(sensor)
                && m.payload_str()
                    .is_some_and(|p| p.starts_with(&format!("{end},")))
        });
        if let Some(m) = last {
            let value = m.payload_str().unwrap().split_once(',').unwrap().1;
            println!("{sensor}: expected {value} °C 5 s after the last full window");
        }
    }
    if std::env::args().any(|a| a == "--dot") {
        // The pipeline as it ran, with each node's counters (see scripts/render_graphs.sh).
        println!("{}", source.to_dot_with_metrics());
    }
    Ok(())
}
