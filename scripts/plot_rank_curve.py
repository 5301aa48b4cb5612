#!/usr/bin/env python3
"""Plots the ranker's cost/quality curve (hmrec_rank_curve --jsonl) to a PNG:
holdout MAP@12 against microseconds per customer on one thread, one line
per candidate scale, one point per tree count.

    plot_rank_curve.py curve.jsonl OUT.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    points = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for scale in sorted({p["scale"] for p in points}, reverse=True):
        ps = sorted((p for p in points if p["scale"] == scale), key=lambda p: p["predict_us"])
        x = [p["candidates_us"] + p["predict_us"] for p in ps]
        y = [p["map"] for p in ps]
        ax.plot(x, y, marker="o", label=f"{ps[0]['candidates']:.0f} candidates")
        for p, xi, yi in zip(ps, x, y):
            ax.annotate(str(p["trees"] or "all"), (xi, yi), textcoords="offset points", xytext=(3, -9), fontsize=7)
    ax.set_xlabel("µs per customer, one thread (candidates + features + XGBoost)")
    ax.set_ylabel("holdout MAP@12")
    ax.set_title("Ranker: quality vs cost (labels: trees)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
