"""A model under the published papers' protocol: the epoch chosen on the test split.

    GRAPHREC_DATA=../shared/datasets python benchmarks/published_protocol.py --model stamp \\
        --dataset diginetica --epochs 10 --run-dir runs/stamp-test-selected --threads 1

The SR-GNN and STAMP reference codes train on the whole training file, evaluate
the test split after every epoch and report the best epoch's figures. This
script does the same with a registered model (or a recipe) and its training
defaults, and prints every epoch's test HR@20 / MRR@20 and their maxima. It
measures how much of a gap to a paper comes from that protocol. **Do not select
models with it**: graphrec's own figures choose the epoch on validation
(``graphrec train``, ``graphrec benchmark``). The run resumes from its last
checkpoint when run again with the same ``--run-dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from _common import data_root_or_exit

from graphrec.datasets import load_dataset
from graphrec.models import build_model, model_names, training_defaults
from graphrec.training import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="stamp", choices=model_names())
    parser.add_argument("--dataset", default="diginetica")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args()
    root = data_root_or_exit()
    train = load_dataset(args.dataset, "train", root=root, valid_fraction=0)
    test = load_dataset(args.dataset, "test", root=root)
    torch.manual_seed(args.seed)
    model = build_model(args.model, dataset=train)
    hp = {"epochs": 30, **training_defaults(args.model)}
    hp.pop("monitor", None)
    if args.epochs is not None:
        hp["epochs"] = args.epochs
    trainer = Trainer(
        model, train, test, monitor="HR@20", patience=hp["epochs"], run_dir=args.run_dir,
        seed=args.seed, checkpoint_every=1000, progress=False, num_threads=args.threads,
        run_info={"dataset": args.dataset, "valid_fraction": 0,
                  "protocol": "the 'valid' metrics of this run are the TEST split's"},
        **hp,
    )  # fmt: skip
    trainer.fit(resume=(args.run_dir / "last.pt").is_file())
    rows = [json.loads(x) for x in (args.run_dir / "metrics.jsonl").read_text().splitlines()]
    print("epoch  test HR@20  test MRR@20")
    for r in rows:
        hr, mrr = 100 * r["valid"]["HR@20"], 100 * r["valid"]["MRR@20"]
        print(f"{r['epoch']:5d}  {hr:10.2f}  {mrr:11.2f}")
    for metric in ("HR@20", "MRR@20"):
        best = max(rows, key=lambda r: r["valid"][metric])
        print(f"max test {metric}: {100 * best['valid'][metric]:.2f} (epoch {best['epoch']})")


if __name__ == "__main__":
    main()
