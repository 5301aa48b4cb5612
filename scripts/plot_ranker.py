#!/usr/bin/env python3
"""Plots the ranker's validation MAP@12 per boosting round, one line per
learning rate tried (ranker_curve.tsv written by hmrec_trainer's ranking
stage: learning_rate, kept, round, valid_map_at_12) to a PNG.

    plot_ranker.py WORK/ranking/ranker_curve.tsv OUT.png
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    curves = {}  # rate -> (kept, rounds, values)
    with open(src) as f:
        next(f)
        for line in f:
            rate, kept, r, v = line.split()
            c = curves.setdefault(rate, (kept == "1", [], []))
            c[1].append(int(r))
            c[2].append(float(v))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for rate, (kept, rounds, values) in curves.items():
        best = max(range(len(values)), key=lambda i: values[i])
        label = f"rate {rate}: best {values[best]:.4f} at {rounds[best]}" + (" (kept)" if kept else "")
        line, = ax.plot(rounds, values, label=label, lw=2 if kept else 1)
        if kept:
            ax.axvline(rounds[best], color=line.get_color(), linestyle=":")
    ax.set_xlabel("boosting round")
    ax.set_ylabel("MAP@12, last label week")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
