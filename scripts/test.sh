#!/usr/bin/env bash
# Runs brooklet's whole test suite on a fresh machine: formatting, lints (benches and examples
# included), then unit, integration and documentation tests. Run from anywhere. The Kafka tests
# use the broker in KAFKA_BROKERS when it is set, else one this script starts and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
# The Kafka feature builds the bundled librdkafka (gcc, make, pkg-config, zlib headers), and its
# tests run against a real Kafka-protocol broker that scripts/kafka.sh starts on 127.0.0.1.
missing=()
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> apt-get install ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "==> cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings -D rustdoc::all" cargo doc --no-deps --all-features --quiet

if [ -z "${KAFKA_BROKERS:-}" ]; then
  echo "==> Kafka broker"
  trap 'scripts/kafka.sh stop' EXIT
  scripts/kafka.sh start
  KAFKA_BROKERS=$(cat "${KAFKA_HOME:-.kafka}/brokers")
  export KAFKA_BROKERS
fi
echo "KAFKA_BROKERS=$KAFKA_BROKERS"

echo "==> cargo test"
cargo test --all-features
