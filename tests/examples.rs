//! Every example runs and shows what it says it shows, so none can rot. `cargo test` builds
//! the examples before it runs the tests; this runs those binaries.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The directory cargo put the examples in: beside this test binary's `deps` directory.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    profile.join("examples")
}

/// Runs example `name` (bounded in time) and returns what it printed.
fn run(name: &str) -> String {
    run_with(name, |c| c)
}

/// Like [`run`], with the command adjusted first (environment, arguments).
fn run_with(name: &str, adjust: impl FnOnce(&mut Command) -> &mut Command) -> String {
    let path = examples_dir().join(name);
    assert!(
        path.exists(),
        "example binary {} not found: run through `cargo test`, which builds it",
        path.display()
    );
    let mut command = Command::new(&path);
    let child = adjust(&mut command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the example");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("the example's output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("example {name} did not finish within 120 s");
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_shows(name: &str, out: &str, expected: &[&str]) {
    for line in expected {
        assert!(
            out.contains(line),
            "example {name} does not show {line:?}:\n{out}"
        );
    }
}

#[test]
fn quickstart() {
    let out = run("quickstart");
    assert_shows(
        "quickstart",
        &out,
        &[
            "running totals: [6, 18, 36]",
            "batches:        [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]",
            "digraph brooklet",
        ],
    );
}

#[test]
fn fan_out_shows_emits_waiting_for_the_slow_branch() {
    let out = run("fan_out");
    assert_shows(
        "fan_out",
        &out,
        &[
            "emit 0: accepted at once",
            "waited for the slow archive (buffer full)",
            "alarms:       [(\"b\", 30.1), (\"b\", 31.7), (\"b\", 30.5)]",
            "archived:     8 readings",
        ],
    );
}

#[test]
fn feedback_computes_fibonacci_through_a_loop() {
    let out = run("feedback");
    assert_shows(
        "feedback",
        &out,
        &[
            "fibonacci: 1, 1, [2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597]",
            "style=dashed",
        ],
    );
}

#[test]
fn rate_limited_feedback_runs_its_loop_at_a_pace() {
    let out = run("rate_limited_feedback");
    assert_shows(
        "rate_limited_feedback",
        &out,
        &[
            "pace\\n(rate_limit)",
            "step 15: 987",
            "closed after 15 values",
        ],
    );
    // After the two seeds, one value per 100 ms: 13 intervals between the 2nd and the 15th.
    let ms = |line: &str| -> u64 { line.split_whitespace().next().unwrap().parse().unwrap() };
    let steps: Vec<u64> = out
        .lines()
        .filter(|l| l.contains(" step "))
        .map(ms)
        .collect();
    assert_eq!(steps.len(), 15, "{out}");
    assert!(
        steps[14] - steps[1] >= 1_300,
        "the loop ran faster than its pace: {steps:?}"
    );
}

#[test]
fn crash_detection_alerts_on_device_2_only() {
    let out = run("crash_detection");
    assert_shows(
        "crash_detection",
        &out,
        &["ALERT device 2", "8 alert window(s), all for device 2"],
    );
    assert!(!out.contains("ALERT device 1"), "false alarm:\n{out}");
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_prediction_runs_on_the_mock_cluster_without_a_broker() {
    let out = run_with("kafka_prediction", |c| c.env_remove("KAFKA_BROKERS"));
    assert_shows(
        "kafka_prediction",
        &out,
        &["using librdkafka's mock cluster", "predictions from"],
    );
}

#[cfg(feature = "kafka")]
#[test]
fn kafka_windows_runs_both_pipelines_on_the_mock_cluster_without_a_broker() {
    let out = run_with("kafka_windows", |c| c.env_remove("KAFKA_BROKERS"));
    assert_shows(
        "kafka_windows",
        &out,
        &[
            "window: read 1000 records from `numbers`, wrote to `windows`",
            "unordered: read 1000 records from `numbers`, wrote to `squares`",
        ],
    );
}
