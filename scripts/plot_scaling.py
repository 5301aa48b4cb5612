#!/usr/bin/env python3
"""How cost grows (docs/SCALING.md): search time per 1000 customers against
catalogue size for each index (hmrec_index_bench --scale ... --json), and
1000-id feature-store lookup time and store size against customers
(hmrec_store_bench --json).

usage: plot_scaling.py index.jsonl store.jsonl out.png [serving.jsonl]

With serving.jsonl (bench/catalogue_bench.sh --json), a third panel: the
real server's 1000-id p50/p99 and RSS against catalogue size.
"""
import collections
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    return [json.loads(line) for line in open(path) if line.strip()]


def panel(ax, x, series, xlabel, right):
    """Lines of `series` [(values, style, label)] in ms on `ax`, and the
    `right` (values, label) on a second axis; one legend for both."""
    for values, style, label in series:
        ax.plot(x, values, style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ms")
    ax.grid(True, alpha=0.3)
    twin = ax.twinx()
    twin.plot(x, right[0], ":^", color="gray", label=right[1])
    twin.set_ylabel(right[1])
    h, h2 = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
    ax.legend(h[0] + h2[0], h[1] + h2[1], fontsize=8, loc="upper left")


def main(index_path, store_path, out_path, serving_path=None):
    panels = 3 if serving_path else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.5))
    a, b = axes[0], axes[1]
    series = collections.defaultdict(list)
    for r in rows(index_path):
        series[r["index"]].append((r["articles"], r["search_ms_p50"]))
    for name, pts in sorted(series.items()):
        pts.sort()
        a.plot([p[0] / 1e3 for p in pts], [p[1] for p in pts], "-o", label=name)
    a.set_xlabel("articles in the catalogue (thousands)")
    a.set_ylabel("search, 1000 customers, top 12 (ms, median)")
    a.set_title("Article search vs catalogue size")
    a.grid(True, alpha=0.3)
    a.legend(fontsize=7)
    st = sorted(rows(store_path), key=lambda r: r["customers"])
    x = [r["customers"] / 1e6 for r in st]
    panel(b, x, [([r["multiget_ms_p50"] for r in st], "-o", "1000-id MultiGet p50 (ms)"),
                 ([r["multiget_ms_p99"] for r in st], "--s", "1000-id MultiGet p99 (ms)")],
          "customers in the feature store (millions)", ([r["disk_mib"] / 1024 for r in st], "size on disk (GiB)"))
    b.set_title("Feature store vs customers")
    if serving_path:
        sv = sorted(rows(serving_path), key=lambda r: r["articles"])
        x = [r["articles"] / 1e3 for r in sv]
        s = axes[2]
        panel(s, x, [([r["p50_ms"] for r in sv], "-o", "1000-id p50 (ms)"),
                     ([r["p99_ms"] for r in sv], "--s", "1000-id p99 (ms)"),
                     ([r["search_ms"] for r in sv], ":o", "search stage (ms)")],
              "articles in the catalogue (thousands)", ([r["server_rss_mib"] for r in sv], "server RSS (MiB)"))
        s.set_title("The server (retrieval only) vs catalogue size")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    main(*sys.argv[1:])
