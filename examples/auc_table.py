"""One AUC / GAUC table for every trained model of a dataset, with 95% intervals
over seeds.

    GRAPHREC_DATA=../shared/datasets python examples/auc_table.py \\
        runs/amazon-rank/base-s0 runs/amazon-rank/base-s1 runs/amazon-rank/base-s2 \\
        runs/amazon-rank/din-s* runs/amazon-rank/dien-s* runs/amazon-srgnn ...

Each argument is a run directory (``graphrec train --run-dir``). Its ``best.pt``
is evaluated on the test split of the dataset it was trained on, against the
same 100 sampled negatives for every model (``evaluate(..., negatives=100,
full_ranking=False)``): AUC, GAUC and HR@10 / NDCG@10 over the 101 candidates,
retrieval models and rankers alike, beside POP. Runs whose directory names
differ only by a ``-s<seed>`` suffix are one model: the table gives their mean
and a 95% Student-t interval.
"""

from __future__ import annotations

import argparse
import math
import re
from collections import defaultdict
from pathlib import Path

import torch

from graphrec.datasets import load_dataset
from graphrec.evaluation import evaluate
from graphrec.models import Popularity
from graphrec.training import load_checkpoint, load_model

METRICS = ("AUC", "GAUC", "HR@10", "NDCG@10")
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # two-sided, n - 1 dof


def test_split(info: dict, negatives: int):
    kwargs = {"valid_fraction": info.get("valid_fraction", 0.1),
              "max_length": info.get("max_length"),
              "history_length": info.get("history_length", 0)}  # fmt: skip
    if info["dataset"] != "amazon-games":
        kwargs["cache"] = False
    return load_dataset(info["dataset"], "test", **kwargs), load_dataset(
        info["dataset"], "train", **kwargs
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--negatives", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    pop = None
    for run in args.runs:
        state = load_checkpoint(Path(run) / "best.pt")
        model = load_model(Path(run) / "best.pt")
        test, train = test_split(state["run_info"], args.negatives)
        got = evaluate(model, test, ks=(10,), negatives=args.negatives, full_ranking=False)
        name = re.sub(r"-s\d+$", "", Path(run).name)
        rows[f"{name} ({type(model).__name__})"].append(got)
        if pop is None:
            pop = evaluate(Popularity.from_dataset(train), test, ks=(10,),
                           negatives=args.negatives, full_ranking=False)  # fmt: skip
        print(f"{run}: " + ", ".join(f"{m} {100 * got[f'{m} ({args.negatives} neg.)']:.2f}"
                                     for m in METRICS), flush=True)  # fmt: skip
    rows["POP"].append(pop)
    suffix = f" ({args.negatives} neg.)"
    print(f"\ntest, ranked against {args.negatives} sampled negatives (%, mean ± 95% interval):")
    print(f"{'model':<28}{'seeds':>6}" + "".join(f"{m:>18}" for m in METRICS))
    for name, results in rows.items():
        cells = []
        for m in METRICS:
            values = torch.tensor([100 * r[m + suffix] for r in results], dtype=torch.double)
            n = values.numel()
            half = T95.get(n - 1, 1.96) * float(values.std()) / math.sqrt(n) if n > 1 else 0.0
            cells.append(f"{float(values.mean()):>10.2f} ± {half:<5.2f}")
        print(f"{name:<28}{len(results):>6}" + "".join(cells))


if __name__ == "__main__":
    main()
