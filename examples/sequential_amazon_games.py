"""Retrieval models on Amazon Games (user-sequential data, leave-one-out).

Trains SR-GNN, STAMP, AttRec and SDM with their default hyper-parameters (the
registry's TRAINING_DEFAULTS), selects each epoch on the validation targets
(full-ranking NDCG@10), and prints one table: full-ranking HR@10, NDCG@10,
MRR@10 and the same ranked against 100 sampled negatives, beside Popularity.

    GRAPHREC_DATA=../shared/datasets python examples/sequential_amazon_games.py
    GRAPHREC_DATA=../shared/datasets python examples/sequential_amazon_games.py \
        --models stamp sdm --epochs 6

SDM reads a 10-item short-term window and the 50 items before it as its
long-term history; the other models a 50-item window.
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from graphrec.datasets import load_sequential
from graphrec.evaluation import evaluate, format_table
from graphrec.models import TRAINING_DEFAULTS, Popularity, build_model
from graphrec.training import Trainer

WINDOWS = {"sdm": {"max_length": 10, "history_length": 50}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["srgnn", "stamp", "attrec", "sdm"])
    parser.add_argument("--root", default=None, help="data root (default: $GRAPHREC_DATA)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    table = {}
    for name in args.models:
        window = WINDOWS.get(name, {})
        train, valid, test = (
            load_sequential("amazon-games", root=args.root, split=s, **window)
            for s in ("train", "valid", "test")
        )
        torch.manual_seed(args.seed)
        model = build_model(name, dataset=train)
        hp = dict(TRAINING_DEFAULTS[name])
        hp.pop("epochs", None)
        result = Trainer(
            model,
            train,
            valid,
            epochs=args.epochs,
            patience=args.patience,
            monitor="NDCG@10",
            seed=args.seed,
            run_dir=f"runs/amazon-{name}",
            progress=not args.no_progress,
            **hp,
        ).fit()
        key = f"{type(model).__name__} (epoch {result.best_epoch})"
        table[key] = evaluate(model, test, ks=(10,), negatives=100)
    table["Popularity"] = evaluate(Popularity.from_dataset(train), test, ks=(10,), negatives=100)
    print(f"Amazon Games, test ({len(test)} users), in %:")
    print(format_table(table))
    print(json.dumps(table))


if __name__ == "__main__":
    main()
