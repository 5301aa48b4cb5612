#!/usr/bin/env python3
"""Search time against recall@12 for each index setting, from the Markdown
table hmrec_index_bench prints.

usage: plot_index.py index.md out.png
"""
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(table_path, out_path):
    points = []
    for line in open(table_path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not re.match(r"^[0-9.]+$", cells[2]):
            continue
        recall = 1.0 if cells[3].startswith("1 ") else float(cells[3])
        name = re.sub(r"^IDMap,|\(CPU\)|,Flat\(IP\)", "", cells[0]).replace("Flat, hmrec exact search", "hmrec exact").strip()
        points.append((name, float(cells[2]), recall))
    fig, axes = plt.subplots(1, 2, figsize=(14, 6))
    families = {"IVF": "tab:blue", "HNSW": "tab:orange", "SQ8": "tab:red", "hmrec": "tab:green", "FlatIP": "tab:gray"}
    for ax, zoom in zip(axes, (False, True)):
        shown = [p for p in points if not zoom or p[2] >= 0.96]
        for i, (name, ms, recall) in enumerate(sorted(shown, key=lambda p: p[1])):
            color = next((c for k, c in families.items() if k in name), "black")
            ax.scatter(ms, recall, color=color, s=30)
            dy = (-12, 6)[i % 2] if zoom else -3
            ax.annotate(name, (ms, recall), textcoords="offset points", xytext=(4, dy), fontsize=7)
        ax.axhline(0.99, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("search time for 1,000 queries, ms (log scale, 2 threads)")
        ax.set_ylabel("recall@12 against exact search")
        ax.set_title("recall >= 0.96 (zoom)" if zoom else "all settings")
        ax.grid(True, alpha=0.3, which="both")
    fig.suptitle("Index types on the full-scale bundle (105,542 articles, d = 64); dotted: recall 0.99")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    print(f"plot_index: wrote {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
