//! Crash detection from accelerometer data: readings (x, y, z, ts) → magnitude → hopping
//! window of 2 s every 250 ms summing the magnitude → alert when the sum is over a threshold.
//!
//! Runs on deterministic generated data: 20 s of 100 Hz readings from two devices, with gravity
//! and a little vibration, and one crash (a burst of 8 g for 300 ms) on device 2 at t = 12 s.
//!
//! ```text
//! cargo run --example crash_detection
//! ```

use brooklet::Source;
use brooklet::window::Window;

#[derive(Clone, Copy, Debug)]
struct Reading {
    device: u32,
    x: f64,
    y: f64,
    z: f64,
    ts: i64,
}

/// Readings in g at 100 Hz; a tiny LCG makes the vibration deterministic.
fn readings() -> Vec<Reading> {
    let mut seed: u64 = 42;
    let mut noise = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as f64 / (1u64 << 31) as f64 - 0.5) * 0.1
    };
    let mut out = vec![];
    for step in 0..2_000 {
        let ts = 1_700_000_000_000 + step * 10;
        for device in [1, 2] {
            let crash = device == 2 && (12_000..12_300).contains(&(step * 10));
            let (x, y) = if crash {
                (8.0, -5.0)
            } else {
                (noise(), noise())
            };
            out.push(Reading {
                device,
                x,
                y,
                z: 1.0 + noise(),
                ts,
            });
        }
    }
    out
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), brooklet::Error> {
    // Normal motion: 200 readings of ~1 g per 2 s window sum to ~200. A crash adds far more.
    const THRESHOLD: f64 = 400.0;

    let source = Source::new();
    let alerts = source
        .map(|r: Reading| (r.device, r.ts, (r.x * r.x + r.y * r.y + r.z * r.z).sqrt()))
        .window(Window::hopping(2_000, 250))
        .timestamp(|m| m.1)
        .key_by(|m| m.0)
        .grace(100)
        .sum(|m| m.2)
        .filter(|w| w.value > THRESHOLD)
        .sink_to_vec();

    for r in readings() {
        source.emit(r).await?;
    }
    source.close().await?;

    let alerts = alerts.snapshot();
    for w in &alerts {
        println!(
            "ALERT device {}: magnitude sum {:.1} g over [{} ms, {} ms) (+{:.2} s .. +{:.2} s)",
            w.key,
            w.value,
            w.start,
            w.end,
            (w.start - 1_700_000_000_000) as f64 / 1e3,
            (w.end - 1_700_000_000_000) as f64 / 1e3,
        );
    }
    println!("{} alert window(s), all for device 2", alerts.len());
    assert!(!alerts.is_empty() && alerts.iter().all(|w| w.key == 2));
    Ok(())
}
