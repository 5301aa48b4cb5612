#!/usr/bin/env python3
"""Latency against throughput from bench/server_bench.sh --json results: one
line per request size (ids per call), one point per concurrency (median of
the runs), p50 solid and p99 dashed.

usage: plot_load.py results.jsonl out.png [title]
"""
import collections
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(results_path, out_path, title):
    runs = collections.defaultdict(list)
    for line in open(results_path):
        if line.strip():
            r = json.loads(line)
            runs[(r["ids_per_request"], r["concurrency"])].append(r)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, ids in zip(axes, sorted({k[0] for k in runs}, reverse=True)):
        points = sorted((c, rs) for (i, c), rs in runs.items() if i == ids)
        x = [statistics.median(r["customers_per_s"] for r in rs) for _, rs in points]
        for key, style in (("p50_ms", "-o"), ("p99_ms", "--s")):
            y = [statistics.median(r[key] for r in rs) for _, rs in points]
            ax.plot(x, y, style, label=key.replace("_ms", ""))
        for (c, _), xi, yi in zip(points, x, [statistics.median(r["p99_ms"] for r in rs) for _, rs in points]):
            ax.annotate(f"{c} clients", (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("throughput, customers/s")
        ax.set_ylabel("latency per call, ms (client to client)")
        ax.set_title(f"{ids} customer id{'s' if ids > 1 else ''} per call")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    print(f"plot_load: wrote {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "hmrec-server: latency vs load")
