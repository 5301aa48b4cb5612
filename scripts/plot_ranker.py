#!/usr/bin/env python3
"""Plots the ranker's validation MAP@12 per boosting round (ranker_curve.tsv
written by hmrec_trainer's ranking stage) to a PNG.

    plot_ranker.py WORK/ranking/ranker_curve.tsv OUT.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    rounds, values = [], []
    with open(src) as f:
        next(f)
        for line in f:
            r, v = line.split()
            rounds.append(int(r))
            values.append(float(v))
    best = max(range(len(values)), key=lambda i: values[i])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(rounds, values, label="last label week (early stopping)")
    ax.axvline(rounds[best], color="grey", linestyle=":", label=f"kept: {rounds[best]} rounds")
    ax.set_xlabel("boosting round")
    ax.set_ylabel("MAP@12 of its candidate groups")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
