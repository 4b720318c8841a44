#!/usr/bin/env python3
"""Draws the per-element cost of the `overhead` benchmark as an SVG bar chart.

Reads criterion's results (target/criterion/<group>/<peer>/<param>/new/estimates.json and the
benchmark.json beside it), divides each mean by the elements per iteration, and writes one
group of bars per topology, one bar per peer, on a logarithmic axis (the peers span two orders
of magnitude). The SVG is written by hand, so the script needs nothing beyond python3.

Regenerate after a run of the benchmark:

    cargo bench -p brooklet-benchmarks --bench overhead -- --warm-up-time 1 --measurement-time 3
    python3 scripts/plot_benches.py            # writes docs/overhead.svg

Options: --criterion DIR (default target/criterion), --out FILE (default docs/overhead.svg).
"""

import argparse
import json
import math
import os
import sys

# Topologies, in the order of the benchmark, as (criterion group, parameter or None, label).
TOPOLOGIES = [
    ("map_filter_sink", None, "map → filter → sink"),
    ("chain_depth", "1", "chain of 1 map"),
    ("chain_depth", "2", "chain of 2 maps"),
    ("chain_depth", "5", "chain of 5 maps"),
    ("chain_depth", "10", "chain of 10 maps"),
    ("fan_out_4", None, "fan-out to 4 sinks"),
    ("union_4", None, "union of 4 sources"),
    ("zip_2", None, "zip of 2"),
]

# Peers as (criterion function id, label, colour).
PEERS = [
    ("hand_loop", "hand loop", "#4d4d4d"),
    ("futures_stream", "futures StreamExt", "#8c6bb1"),
    ("rxrust_local", "rxRust Local", "#74add1"),
    ("rxrust_shared", "rxRust Shared", "#4575b4"),
    ("brooklet", "brooklet", "#d73027"),
    ("brooklet_batch", "brooklet, emit_batch(1024)", "#fc8d59"),
]


def load(criterion_dir):
    """Maps (group, peer, param) to ns per element."""
    out = {}
    for root, _dirs, files in os.walk(criterion_dir):
        if os.path.basename(root) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(root, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(root, "estimates.json")) as f:
            est = json.load(f)
        elements = (bench.get("throughput") or {}).get("Elements")
        if not elements:
            continue
        key = (bench["group_id"], bench.get("function_id"), bench.get("value_str"))
        out[key] = est["mean"]["point_estimate"] / elements
    return out


def find(results, group, peer, param):
    if param is not None:
        return results.get((group, peer, param))
    matches = [v for (g, p, _), v in results.items() if g == group and p == peer]
    return matches[0] if len(matches) == 1 else None


def esc(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def svg(results):
    rows = []
    for group, param, label in TOPOLOGIES:
        bars = [(peer, find(results, group, peer, param)) for peer, _, _ in PEERS]
        if any(v is not None for _, v in bars):
            rows.append((label, bars))
    if not rows:
        sys.exit("no results of the overhead benchmark found: run it first")

    values = [v for _, bars in rows for _, v in bars if v is not None]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    left, right, top, bar_h, gap = 170, 70, 60, 11, 14
    plot_w = 560
    group_h = bar_h * len(PEERS) + gap
    height = top + group_h * len(rows) + 40
    width = left + plot_w + right

    def x_of(v):
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="18" font-size="14" font-weight="bold">'
        "Per-element cost by topology (ns, log scale, lower is better)</text>",
    ]
    # Legend, on as many lines as it needs.
    lx, ly = 10, 28
    for _peer, label, colour in PEERS:
        room = 14 + 6.2 * len(label) + 14
        if lx + room > width:
            lx, ly = 10, ly + 14
        parts.append(f'<rect x="{lx:.0f}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14:.0f}" y="{ly + 9}">{esc(label)}</text>')
        lx += room
    # Grid: every power of ten, with 2 and 5 between.
    decade = lo
    bottom = top + group_h * len(rows) - gap
    while decade <= hi:
        for m in (1, 2, 5):
            v = decade * m
            if v > hi:
                break
            x = x_of(v)
            stroke = "#bbbbbb" if m == 1 else "#e5e5e5"
            parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom + 4}" stroke="{stroke}"/>')
            parts.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{v:g}</text>')
        decade *= 10
    parts.append(f'<text x="{left + plot_w / 2}" y="{bottom + 34}" text-anchor="middle">ns per element</text>')
    # Bars.
    colours = {peer: colour for peer, _, colour in PEERS}
    for i, (label, bars) in enumerate(rows):
        y0 = top + i * group_h
        parts.append(
            f'<text x="{left - 8}" y="{y0 + bar_h * len(PEERS) / 2 + 4}" text-anchor="end">{esc(label)}</text>'
        )
        for j, (peer, v) in enumerate(bars):
            y = y0 + j * bar_h
            if v is None:
                parts.append(f'<text x="{left + 4}" y="{y + bar_h - 2}" fill="#888888">n/a</text>')
                continue
            w = max(x_of(v) - left, 1)
            parts.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 1}" fill="{colours[peer]}"/>'
            )
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 2}">{v:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", default="target/criterion")
    parser.add_argument("--out", default="docs/overhead.svg")
    args = parser.parse_args()
    results = load(args.criterion)
    text = svg(results)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
