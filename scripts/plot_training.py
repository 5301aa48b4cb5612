#!/usr/bin/env python3
"""Renders the trainer's curves: loss per step, holdout MAP@12 and recall@12 per epoch.

usage: plot_training.py training_metrics.jsonl training_loss.tsv out.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(metrics_path, loss_path, out_path):
    epochs = [json.loads(line) for line in open(metrics_path) if line.strip()]
    steps = []
    for line in open(loss_path):
        parts = line.split("\t")
        if len(parts) == 4:
            steps.append((float(parts[2]), float(parts[3])))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if steps:
        ax1.plot([s[0] for s in steps], [s[1] for s in steps], lw=0.6, alpha=0.5, label="step loss")
    ax1.plot([e["epoch"] for e in epochs], [e["loss"] for e in epochs], "o-", label="epoch mean")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("weighted in-batch softmax loss")
    ax1.set_title("training loss")
    ax1.legend()
    ev = [e for e in epochs if "map_at_12" in e]
    if ev:
        ax2.plot([e["epoch"] for e in ev], [e["map_at_12"] for e in ev], "o-", label="MAP@12")
        ax2b = ax2.twinx()
        ax2b.plot([e["epoch"] for e in ev], [e["recall_at_12"] for e in ev], "s--", color="tab:orange",
                  label="recall@12")
        ax2b.set_ylabel("recall@12")
        ax2.legend(loc="upper left")
        ax2b.legend(loc="lower right")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("MAP@12")
    ax2.set_title("held-out week")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:4])
