#!/usr/bin/env bash
# Renders the graphs of the examples to SVG with Graphviz, from what the examples themselves
# print (`to_dot_with_metrics`): the pictures in the README are generated, never drawn.
#
#   bash scripts/render_graphs.sh          # writes docs/*.dot and docs/*.svg
#
# Installs Graphviz (Debian's `graphviz` package) when `dot` is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "==> installing graphviz"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq graphviz >/dev/null
fi

mkdir -p docs
render() { # example name, output name, extra args
  local example=$1 name=$2
  shift 2
  echo "==> $example -> docs/$name.svg"
  # The example prints its graph last; keep only the DOT text.
  cargo run -q --features kafka --example "$example" -- --dot "$@" | sed -n '/^digraph/,/^}/p' > "docs/$name.dot"
  dot -Tsvg "docs/$name.dot" -o "docs/$name.svg"
}

render feedback feedback
if [ -f examples/kafka_prediction.rs ]; then
  render kafka_prediction kafka_prediction
fi
