#!/usr/bin/env python3
"""The side-by-side baseline: what a data scientist would run instead of the
service, as the Kaggle notebooks do — the customer tower in PyTorch and an
exact faiss search, customers in batches of 1000, in one Python process.
Same bundle (its customer_tower.pt, index.faiss, fallback.pbtxt), same
customers, same machine; the encoded features come from
hmrec_export_features, so both sides see identical inputs.

usage: python_scorer.py BUNDLE FEATURES_DIR CUSTOMERS_CSV OUT_CSV [--batch 1000] [--threads 2]
Prints one JSON line: customers, seconds (scoring only: tower + search +
formatting, features already in memory), customers_per_s.
"""
import argparse
import csv
import json
import os
import re
import time

import faiss
import numpy as np
import torch


def load_tower(path):
    """The exported TorchScript archive holds the weights and buffers of
    model/towers.cc's CustomerTower; its forward is written out here."""
    m = torch.jit.load(path)
    p = dict(m.named_parameters())
    b = dict(m.named_buffers())
    mlp = sorted({int(n.split(".")[1]) for n in p if n.startswith("mlp.")})
    layers = [(p[f"mlp.{i}.weight"], p[f"mlp.{i}.bias"]) for i in mlp]

    def forward(fields, history):
        f = torch.nn.functional.embedding(fields + b["field_offsets"], p["field_table.weight"])
        rows = b["attribute_rows"][history]                       # [B, H, 1+K]
        mask = (history > 0).float()
        w = mask / mask.sum(1, keepdim=True).clamp_min(1.0)      # mean over the purchases
        pooled = (torch.nn.functional.embedding(rows, p["history_table.weight"]) * w[:, :, None, None]).sum((1, 2))
        x = torch.cat([f.reshape(f.shape[0], -1), pooled], 1)
        for i, (weight, bias) in enumerate(layers):
            x = torch.nn.functional.linear(x, weight, bias)
            if i + 1 < len(layers):
                x = torch.relu(x)
        return torch.nn.functional.normalize(x, dim=1)

    return forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle")
    ap.add_argument("features")
    ap.add_argument("customers")
    ap.add_argument("out")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    faiss.omp_set_num_threads(a.threads)

    tower = load_tower(os.path.join(a.bundle, "customer_tower.pt"))
    index = faiss.read_index(os.path.join(a.bundle, "index.faiss"))
    fallback = [int(x) for x in re.findall(r"article_ids: (\d+)", open(os.path.join(a.bundle, "fallback.pbtxt")).read())]
    with open(a.customers) as f:
        ids = [row[0] for row in list(csv.reader(f))[1:]]
    fields = torch.from_numpy(np.load(os.path.join(a.features, "fields.npy")).astype(np.int64))
    history = torch.from_numpy(np.load(os.path.join(a.features, "history.npy")).astype(np.int64))
    found = np.load(os.path.join(a.features, "found.npy")).astype(bool)
    assert len(ids) == fields.shape[0] == history.shape[0] == found.shape[0]

    rows = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i0 in range(0, len(ids), a.batch):
            i1 = min(len(ids), i0 + a.batch)
            known = np.nonzero(found[i0:i1])[0]
            labels = np.empty((0, 12), dtype=np.int64)
            if len(known):
                sel = torch.from_numpy(known + i0)
                q = tower(fields[sel], history[sel]).numpy()
                _, labels = index.search(q, 12)
            top = {}
            for j, r in zip(known, labels):
                top[j] = r
            for j in range(i1 - i0):
                arts = top[j] if j in top else fallback[:12]
                rows.append(ids[i0 + j] + "," + " ".join(f"{x:010d}" for x in arts))
    seconds = time.perf_counter() - start
    with open(a.out, "w") as f:
        f.write("customer_id,prediction\n" + "\n".join(rows) + "\n")
    print(json.dumps({"customers": len(ids), "seconds": round(seconds, 3),
                      "customers_per_s": round(len(ids) / seconds, 1)}))


if __name__ == "__main__":
    main()
