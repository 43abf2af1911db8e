"""Every model with side fields against itself without, on a synthetic log with a
planted field signal.

    python benchmarks/fields_synthetic.py [--models srgnn,stamp,attrec,sdm,din,dien]
        [--sessions 4000] [--items 5000] [--brand-share 0.5] [--epochs 3]

The log (:func:`graphrec.datasets.synthetic` with ``num_brands=20``): items have a
category and a brand, users a segment (the brand they prefer), and a share
``--brand-share`` of next clicks comes from the user's brand. Inputs keep the
last 10 clicks, with a 20-click history (SDM reads it). Each model trains
``--epochs`` epochs with its registry defaults, selected on validation HR@20
(DIN and DIEN: their AUC against 100 sampled negatives), twice from the same
seed: with the data's fields (item ``brand``; user ``segment`` for the models
that read users' fields) and without them (the category, which every model had
before, stays). Test metrics: full ranking HR@20 and NDCG@10 (not
for DIN and DIEN: one forward pass per item), and AUC / GAUC against 100 sampled
negatives. One thread.
"""

from __future__ import annotations

import argparse
import time

import torch

from graphrec.datasets import synthetic
from graphrec.evaluation import evaluate
from graphrec.models import build_model
from graphrec.models.registry import TRAINING_DEFAULTS
from graphrec.training import Trainer

RANKERS = ("din", "dien")
RETRIEVERS_WITHOUT_USER_FIELDS = ("srgnn", "stamp", "attrec")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="srgnn,stamp,attrec,sdm,din,dien")
    parser.add_argument("--sessions", type=int, default=4000)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--brand-share", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = dict(num_sessions=args.sessions, num_items=args.items, num_users=400,
                num_categories=20, num_brands=20, brand_share=args.brand_share)  # fmt: skip
    splits = [synthetic(**size, split=s, history_length=20, max_length=10)
              for s in ("train", "valid", "test")]  # fmt: skip
    train, valid, test = splits
    print(f"{train}: item fields {list(train.item_features)}, user fields "
          f"{list(train.user_features)}")  # fmt: skip
    for name in args.models.split(","):
        for label in ("ids", "fields"):
            off = {} if label == "fields" else {"item_fields": None}
            if label == "ids" and name not in RETRIEVERS_WITHOUT_USER_FIELDS:
                off["user_fields"] = None
            torch.manual_seed(0)
            model = build_model(name, dataset=train, **off)
            hparams = {k: v for k, v in TRAINING_DEFAULTS[name].items() if k != "epochs"}
            hparams.setdefault("monitor", "HR@20")  # rankers: their AUC over 100 negatives
            start = time.perf_counter()
            Trainer(model, train, valid, epochs=args.epochs, progress=False, verbose=False,
                    ks=(10, 20), negatives=100 if name in RANKERS else None,
                    **hparams).fit()  # fmt: skip
            r = evaluate(model, test, ks=(10, 20), negatives=100, full_ranking=name not in RANKERS)
            hr, ndcg = (100 * r.get(m, float("nan")) for m in ("HR@20", "NDCG@10"))
            auc, gauc = (100 * r[m] for m in ("AUC (100 neg.)", "GAUC (100 neg.)"))
            print(f"{name:6s} {label:6s} {time.perf_counter() - start:5.0f} s  HR@20 {hr:.2f}  "
                  f"NDCG@10 {ndcg:.2f}  AUC {auc:.2f}  GAUC {gauc:.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
