"""The test tables that ``graphrec train`` and ``graphrec evaluate`` print."""

from __future__ import annotations

import argparse
import time

from graphrec.distributed import is_distributed
from graphrec.evaluation import evaluate
from graphrec.models import Popularity, SessionPopularity, TwoStage


def baselines(train, test, ks, negatives=None) -> dict[str, dict[str, float]]:
    shared = {"ks": ks, "negatives": negatives, "distributed": is_distributed()}
    return {
        "S-POP": evaluate(SessionPopularity.from_dataset(train), test, **shared),
        "POP": evaluate(Popularity.from_dataset(train), test, **shared),
    }


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
