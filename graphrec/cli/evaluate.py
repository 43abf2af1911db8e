"""``graphrec evaluate``: a checkpoint, or a retriever -> ranker pipeline."""

from __future__ import annotations

import argparse
import time

from graphrec.cli import common
from graphrec.cli.tables import baselines, pipeline
from graphrec.datasets import is_sequential, load_dataset
from graphrec.evaluation import (
    FaissRetriever,
    evaluate,
    evaluate_multi_target,
    evaluate_session_rec,
    format_table,
)
from graphrec.models import TwoStage
from graphrec.training import load_checkpoint, load_model


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.checkpoint is None:
        if args.retriever is None or args.ranker is None:
            raise ValueError("pass --checkpoint, or --retriever and --ranker (two-stage)")
        return evaluate_pipeline(args)
    if args.retriever is not None or args.ranker is not None:
        raise ValueError(
            "--checkpoint evaluates one model; for two stages pass only --retriever and --ranker"
        )
    state = load_checkpoint(args.checkpoint)
    model = load_model(args.checkpoint, map_location=args.device or "cpu")
    common.configure_model_threads(args, model)
    name, kwargs = common.checkpoint_data(args, state)
    data = load_dataset(name, args.split, **kwargs)
    common.check_model_data(model, data, args.checkpoint, args, state)
    ks = tuple(args.ks)
    negatives = common.eval_negatives(args, name, model)
    title = f"{type(model).__name__} ({args.checkpoint})"
    start = time.perf_counter()
    full = model.cheap_full_ranking or args.full_ranking or negatives is None
    table = {
        title: evaluate(
            model, data, ks=ks, batch_size=args.batch_size, negatives=negatives, full_ranking=full
        )
    }
    what = "full ranking" if full else f"ranking against {negatives} sampled negatives"
    print(f"{what} of {len(data)} samples in {time.perf_counter() - start:.1f} s")
    if args.faiss:
        retriever = FaissRetriever(model.item_vectors(), kind=args.faiss, metric=model.metric)
        table[f"{title} via faiss {args.faiss}"] = evaluate(model, data, ks=ks, retriever=retriever)
    if args.baselines:
        table.update(_baselines(name, kwargs, data, ks, negatives, args.split, not args.no_knn))
    print(f"{name} / {args.split} (%):")
    print(format_table(table))
    if args.multi_target:
        mt = evaluate_multi_target(model, data, ks=ks)
        print("\nmulti-target (first 80% of each session -> the rest):")
        print(format_table({title: mt}))
    if args.session_rec:
        sr = evaluate_session_rec(model, data, ks=ks)
        print(
            "\nsession-rec protocol (every position; HR/MRR: the next click; "
            "P/R/MAP/NDCG: the rest of the session):"
        )
        print(format_table({title: sr}))


def evaluate_pipeline(args: argparse.Namespace) -> None:
    ranker = load_model(args.ranker, map_location=args.device or "cpu")
    retriever = load_model(args.retriever, map_location=args.device or "cpu")
    # the roles, before any data is read
    TwoStage(retriever, ranker, k=min(args.k, ranker.num_items))
    if args.k > ranker.num_items:
        raise ValueError(f"-k {args.k}: the catalogue has only {ranker.num_items} items")
    common.configure_model_threads(args, ranker)
    name, kwargs = common.checkpoint_data(args, load_checkpoint(args.ranker))
    data = load_dataset(name, args.split, **kwargs)
    retriever = common.load_retriever(args, data)
    common.check_model_data(ranker, data, f"--ranker {args.ranker}", args)
    negatives = common.eval_negatives(args, name, ranker)
    ks = tuple(args.ks)
    table = pipeline(args, retriever, ranker, data, negatives, ks)
    if args.baselines:
        table.update(_baselines(name, kwargs, data, ks, negatives, args.split, not args.no_knn))
    print(f"{name} / {args.split} (%):")
    print(format_table(table))


def _baselines(name: str, kwargs: dict, data, ks, negatives, split: str, knn: bool) -> dict:
    """POP, S-POP and the kNN methods (arguments chosen on the validation split,
    never when the validation split is the one evaluated), from the checkpoint's
    training split."""
    train = load_dataset(name, "train", **kwargs)
    valid = None
    if knn and kwargs.get("valid_fraction", 0.1) > 0 and split != "valid":
        valid = load_dataset(name, "valid", **kwargs)
    metric = "NDCG@10" if is_sequential(name) else "HR@20"
    return baselines(train, data, ks, negatives, valid=valid, metric=metric, knn=knn)


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=parents,
        help="evaluate a checkpoint, or a retriever -> ranker pipeline",
    )
    p.add_argument("--checkpoint", default=None, help="a model to evaluate")
    p.add_argument("--retriever", default=None, help="two stages: the first-stage checkpoint")
    p.add_argument("--ranker", default=None, help="two stages: the re-ranking checkpoint")
    p.add_argument(
        "-k", type=common.positive_int, default=100, help="candidates passed to the ranker"
    )
    p.add_argument(
        "--full-ranking",
        action="store_true",
        help="rank the full catalogue with a ranker (DIN/DIEN; costly: one pass per item)",
    )
    p.add_argument("--device", type=common.device, default=None, help="e.g. cuda (default: cpu)")
    p.add_argument("--threads", type=common.threads, default="auto", help=common.THREADS_HELP)
    p.add_argument(
        "--dataset", default=None, help="default: the training one; " + common.DATASET_HELP
    )
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--root", default=None)
    p.add_argument("--no-cache", action="store_true", help="do not cache processed graphs")
    p.add_argument("--ks", type=common.positive_int, nargs="+", default=[5, 10, 20])
    p.add_argument("--batch-size", type=common.positive_int, default=100)
    p.add_argument("--faiss", choices=["flat", "hnsw", "ivf"], default=None)
    p.add_argument(
        "--baselines",
        action="store_true",
        help="also POP, S-POP and the kNN methods SKNN, V-SKNN, STAN, VSTAN (arguments "
        "chosen on the validation split)",
    )
    p.add_argument("--no-knn", action="store_true", help="with --baselines: POP and S-POP only")
    p.add_argument("--multi-target", action="store_true", help="also the 80%% protocol")
    p.add_argument(
        "--session-rec",
        action="store_true",
        help="also the session-rec protocol (P@K, R@K, MAP@K, NDCG@K of the rest of the session)",
    )
    p.add_argument(
        "--negatives",
        type=common.nonnegative_int,
        default=None,
        help="metrics over N sampled negatives too (0 = none)",
    )
    p.add_argument("--trust-item-ids", action="store_true", help=common.TRUST_HELP)
    p.set_defaults(func=cmd_evaluate)
