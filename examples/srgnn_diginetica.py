"""Train SR-GNN on Diginetica (or YooChoose 1/64) with the paper's hyper-parameters.

The number of epochs is selected on a validation split (the last 10% of the
training sessions). With --refit, a fresh model is then trained on the whole
training file for that many epochs. Each model is evaluated once on the test
split, beside the popularity baselines.

    GRAPHREC_DATA=../shared/datasets python examples/srgnn_diginetica.py
    GRAPHREC_DATA=../shared/datasets python examples/srgnn_diginetica.py --dataset yoochoose1_64
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from graphrec import SRGNN, Popularity, SessionPopularity
from graphrec.datasets import load_benchmark
from graphrec.evaluation import evaluate, format_table
from graphrec.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="diginetica", choices=["diginetica", "yoochoose1_64"])
    parser.add_argument("--root", default=None, help="data root (default: $GRAPHREC_DATA)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None, help="default: runs/srgnn-<dataset>")
    parser.add_argument("--resume", action="store_true", help="continue <run-dir>/last.pt")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--refit", action="store_true", help="retrain on 100%% of train")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    def load(split: str, valid_fraction: float = 0.1):
        # cache=False: the shared data root is read-only, and building takes seconds
        return load_benchmark(
            args.dataset, root=args.root, split=split, valid_fraction=valid_fraction, cache=False
        )

    def new_model(data):
        torch.manual_seed(args.seed)
        model = SRGNN(data.num_items, hidden_channels=args.hidden, num_layers=args.layers)
        model.set_item_ids(data.item_ids)
        return model

    train, valid, test = load("train"), load("valid"), load("test")
    print(f"train {len(train)}  valid {len(valid)}  test {len(test)}  items {train.num_items}")
    model = new_model(train)
    run_dir = args.run_dir or f"runs/srgnn-{args.dataset}"
    trainer = Trainer(
        model,
        train,
        valid,
        epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        run_dir=run_dir,
        progress=not args.no_progress,
        run_info={"dataset": args.dataset, "valid_fraction": 0.1},
    )
    result = trainer.fit(resume=args.resume)
    print(f"selected epoch {result.best_epoch} on validation")
    table = {f"SR-GNN (epoch {result.best_epoch})": evaluate(model, test)}
    if args.refit:
        full = load("train", valid_fraction=0)
        refit = new_model(full)
        Trainer(
            refit,
            full,
            epochs=result.best_epoch,
            seed=args.seed,
            run_dir=f"{run_dir}/refit",
            progress=not args.no_progress,
        ).fit()
        table[f"SR-GNN refit, 100% train, {result.best_epoch} ep."] = evaluate(refit, test)
    table["S-POP"] = evaluate(SessionPopularity.from_dataset(train), test)
    table["POP"] = evaluate(Popularity.from_dataset(train), test)
    print(f"test split of {args.dataset} ({len(test)} samples), in %:")
    print(format_table(table))
    print(json.dumps(table))


if __name__ == "__main__":
    main()
