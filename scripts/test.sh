#!/usr/bin/env bash
# Runs brooklet's whole test suite on a fresh machine: formatting, lints (benches and examples
# included), then unit, integration and documentation tests. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --all-features -- -D warnings
echo "==> cargo test"
cargo test --all-features
