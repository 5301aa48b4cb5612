"""Splits a generated data directory for the catalogue refresh test: DIR/train
is the data without N articles (their rows of articles.csv and of the
transactions), as if they came to the catalogue after training; DIR/newer
holds the whole articles.csv. Picks, deterministically, articles that sold
(so customers' taste reaches their types) from product types with several
articles. Prints the withheld ids, one a line.

  catalogue_split.py DATA_DIR OUT_DIR N
"""
import collections
import csv
import os
import shutil
import sys

data, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(os.path.join(data, "articles.csv"), newline="") as f:
    rows = list(csv.reader(f))
header, articles = rows[0], rows[1:]
sold = collections.Counter()
with open(os.path.join(data, "transactions_train.csv"), newline="") as f:
    r = csv.reader(f)
    next(r)
    for t in r:
        sold[t[2]] += 1
by_type = collections.Counter(a[3] for a in articles)
eligible = [a for a in articles if sold[a[0]] > 0 and by_type[a[3]] >= 10]
withheld = {a[0] for a in eligible[:: max(1, len(eligible) // n)][:n]}

for sub in ("train", "newer"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
shutil.copy(os.path.join(data, "articles.csv"), os.path.join(out, "newer", "articles.csv"))
shutil.copy(os.path.join(data, "customers.csv"), os.path.join(out, "train", "customers.csv"))
with open(os.path.join(out, "train", "articles.csv"), "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    w.writerows(a for a in articles if a[0] not in withheld)
with open(os.path.join(data, "transactions_train.csv"), newline="") as src, open(
    os.path.join(out, "train", "transactions_train.csv"), "w", newline=""
) as dst:
    r, w = csv.reader(src), csv.writer(dst, lineterminator="\n")
    w.writerow(next(r))
    w.writerows(t for t in r if t[2] not in withheld)
print("\n".join(sorted(withheld)))
