"""``graphrec plot``: training curves of a run, or a t-SNE map of item embeddings."""

from __future__ import annotations

import argparse

from graphrec.cli import common


def cmd_plot(args: argparse.Namespace) -> None:
    from graphrec import plot

    if (args.run_dir is None) == (args.embeddings is None):
        raise ValueError("pass a RUN_DIR, or --embeddings CKPT")
    if args.run_dir is not None:
        written = plot.plot_run(args.run_dir, out=args.out, metrics=args.metrics)
    else:
        written = plot.plot_embeddings(
            args.embeddings,
            out=args.out,
            color=args.color,
            sample=args.sample,
            dataset=args.dataset,
            root=args.root,
            seed=args.seed,
        )
    print(f"wrote {written}")


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plot",
        parents=parents,
        help="training curves of a run, or a t-SNE map of a checkpoint's item embeddings",
    )
    p.add_argument("run_dir", nargs="?", default=None, help="a run directory (metrics.jsonl)")
    p.add_argument("--embeddings", default=None, metavar="CKPT", help="a checkpoint to map")
    p.add_argument("--out", default=None, help="the figure (.png or .svg; default: beside)")
    p.add_argument("--metrics", nargs="+", default=None, help="validation metrics to draw")
    p.add_argument("--color", default="popularity", choices=["popularity", "category"])
    p.add_argument(
        "--sample", type=common.positive_int, default=2000, help="items on the t-SNE map"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default=None, help="default: the checkpoint's")
    p.add_argument("--root", default=None)
    p.set_defaults(func=cmd_plot)
