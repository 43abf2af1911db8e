"""The test tables that ``graphrec train`` and ``graphrec evaluate`` print."""

from __future__ import annotations

import argparse
import time

from graphrec.distributed import is_distributed
from graphrec.evaluation import evaluate
from graphrec.models import Popularity, SessionPopularity, TwoStage
from graphrec.models.knn import KNN_METHODS, tune


def baselines(train, test, ks, negatives=None, valid=None, metric="HR@20", knn=True):
    """POP and S-POP; with a validation split, the four kNN methods too (their
    arguments chosen on it, :func:`graphrec.models.knn.tune`)."""
    shared = {"ks": ks, "negatives": negatives, "distributed": is_distributed()}
    table = {}
    if valid is not None and train.sessions is not None:
        for name in KNN_METHODS:
            start = time.perf_counter()
            model, info = tune(name, train, valid, metric=metric)
            table[name] = evaluate(model, test, **shared)
            chosen = ", ".join(f"{k}={v}" for k, v in info["arguments"].items())
            print(f"{name}: {chosen} (chosen on validation {metric}, "
                  f"{time.perf_counter() - start:.0f} s)")  # fmt: skip
    elif valid is None and knn:
        print("kNN baselines left out: they choose their arguments on a validation split")
    table["S-POP"] = evaluate(SessionPopularity.from_dataset(train), test, **shared)
    table["POP"] = evaluate(Popularity.from_dataset(train), test, **shared)
    return table


def test_metrics(args: argparse.Namespace, model, data, negatives, ks=(5, 10, 20)) -> dict:
    """Test metrics; a ranker ranks the full catalogue only with --full-ranking
    (or ``--negatives 0``)."""
    full = model.cheap_full_ranking or args.full_ranking or negatives is None
    return evaluate(
        model, data, ks=ks, negatives=negatives, full_ranking=full, distributed=is_distributed()
    )


def pipeline(args, retriever, ranker, data, negatives, ks=(5, 10, 20)) -> dict:
    """The first stage alone, with its recall@k (the ceiling of the re-ranker),
    and the two-stage pipeline: the ranker's scores alone, and fused with the
    retriever's (``TwoStage(fusion="product")``)."""
    k = args.k
    first = evaluate(
        retriever, data, ks=(*ks, k), negatives=negatives, distributed=is_distributed()
    )
    recall = first[f"HR@{k}"]
    if k not in ks:  # keep the table's cut-offs; recall@k gets its own column
        first = {m: v for m, v in first.items() if m.split(" (")[0].split("@")[-1] != str(k)}
    first[f"Recall@{k}"] = recall
    r, m = type(retriever).__name__, type(ranker).__name__
    table = {f"{r} (first stage)": first}
    for fusion in ("none", "product"):
        two_stage = TwoStage(retriever, ranker, k=k, fusion=fusion)
        start = time.perf_counter()
        result = evaluate(two_stage, data, ks=ks, negatives=negatives, distributed=is_distributed())
        seconds = time.perf_counter() - start
        print(f"two-stage evaluation ({fusion}) of {len(data)} samples in {seconds:.1f} s")
        name = f"{r} -> {m} (k={k})" if fusion == "none" else f"{r} x {m} (k={k}, product)"
        table[name] = result
    return table
