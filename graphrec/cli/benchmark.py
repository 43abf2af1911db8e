"""``graphrec benchmark``: several models over seeds, one comparison table."""

from __future__ import annotations

import argparse
import shlex
import sys

from graphrec.cli import common


def cmd_benchmark(args: argparse.Namespace) -> None:
    from graphrec.benchmark import results_markdown, run_benchmark

    # finished runs are read back and an interrupted one resumes from its last.pt
    args.resume_hint = shlex.join(["graphrec", *sys.argv[1:]])
    result = run_benchmark(
        [m.strip() for m in args.models.split(",") if m.strip()],
        args.dataset,
        seeds=args.seeds,
        out_dir=args.out,
        root=args.root,
        epochs=args.epochs,
        max_steps=args.max_steps,
        patience=args.patience,
        max_length=args.max_length,
        history_length=args.history_length,
        cache=not args.no_cache,
        device=args.device,
        progress=not args.no_progress,
        train=not args.report,
        negatives=args.negatives,
        num_threads=args.threads,
        reuse_memory=not args.no_reuse_memory,
        knn=not args.no_knn,
        refit=args.refit,
    )
    print(f"\n{result['dataset']}, test split (%; mean ± std over seeds):")
    print(results_markdown(result))


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "benchmark",
        parents=parents,
        help="train several models over seeds; one comparison table (Markdown, CSV, JSON)",
    )
    p.add_argument(
        "--models",
        default="srgnn,stamp,attrec,sdm,din,dien",
        help="comma separated: models, or recipes (srgnn-niser, srgnn-niser-repeat, ...; "
        "see graphrec train --help)",
    )
    p.add_argument("--dataset", default="diginetica", help=common.DATASET_HELP)
    p.add_argument("--seeds", type=common.int_list, default=[0, 1, 2], help="comma separated")
    p.add_argument("--out", default=None, help="default: runs/benchmark/<dataset>")
    p.add_argument("--root", default=None)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--epochs", type=common.positive_int, default=None, help="default: each model's")
    p.add_argument(
        "--max-steps", type=common.positive_int, default=None, help="cap steps per epoch"
    )
    p.add_argument("--patience", type=common.positive_int, default=10)
    p.add_argument("--max-length", type=common.positive_int, default=None)
    p.add_argument("--history-length", type=common.nonnegative_int, default=0)
    p.add_argument(
        "--negatives", type=common.positive_int, default=100, help="sampled test negatives (AUC)"
    )
    p.add_argument("--device", type=common.device, default=None)
    p.add_argument("--threads", type=common.threads, default="auto", help=common.THREADS_HELP)
    p.add_argument("--no-reuse-memory", action="store_true", help=common.REUSE_HELP)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--no-knn", action="store_true", help="leave out the kNN baselines (SKNN ... VSTAN)"
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="also retrain each run on train + validation for the epochs validation chose, "
        "and test it (rows '<model>, refit'; checkpoints in <run>/refit/)",
    )
    p.add_argument(
        "--report", action="store_true", help="train nothing: tables from the runs already done"
    )
    p.set_defaults(func=cmd_benchmark)
