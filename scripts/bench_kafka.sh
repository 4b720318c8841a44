#!/usr/bin/env bash
# Runs the Kafka bench (benchmarks/benches/kafka.rs) against a local broker: starts one with
# scripts/kafka.sh, runs the bench, and stops the broker again (by its process id) on exit,
# whether the bench succeeded or not. Extra arguments go to `cargo bench`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
if scripts/kafka.sh status >/dev/null 2>&1; then
  echo "[bench_kafka.sh] a broker started by scripts/kafka.sh is already running: stop it first" >&2
  exit 1
fi
scripts/kafka.sh start
trap 'scripts/kafka.sh stop' EXIT
KAFKA_BROKERS=$(cat "${KAFKA_HOME:-$ROOT/.kafka}/brokers")
export KAFKA_BROKERS
cargo bench -p brooklet-benchmarks --bench kafka "$@"
