//! Helpers shared by the fault-path test files (`faults.rs`, `worst_day.rs`).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use brooklet::{Error, Outcome};

/// How long any one wait may take before the test fails instead of hanging.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Fails the test instead of hanging it.
pub async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.expect("the call hung")
}

/// Whether `o` is a failure whose first error names `node`.
pub fn failed_in(o: &Option<Outcome>, node: &str) -> bool {
    match o {
        Some(Outcome::Failed(e)) => match e.first() {
            Error::Panicked { node: n, .. } | Error::Failed { node: n, .. } => n == node,
            _ => false,
        },
        _ => false,
    }
}
