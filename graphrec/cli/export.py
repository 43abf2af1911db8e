"""``graphrec export``: a checkpoint (or a retriever -> ranker pipeline) as a portable folder."""

from __future__ import annotations

import argparse
import json
import time

from graphrec.cli import common


def cmd_export(args: argparse.Namespace) -> None:
    from graphrec.export import export_model

    start = time.perf_counter()
    manifest = export_model(
        args.checkpoint, args.out, ranker=args.ranker, k=args.k,
        index=None if args.index == "none" else args.index, overwrite=args.overwrite,
        hnsw_m=args.hnsw_m, ef_search=args.ef_search, nprobe=args.nprobe,
        max_length=args.max_length, max_history=args.max_history,
    )  # fmt: skip
    parts = [manifest[p]["name"] for p in ("retriever", "ranker") if p in manifest]
    print(f"exported {' -> '.join(parts)} to {args.out} in {time.perf_counter() - start:.0f} s "
          "(checked against torch on 70 sessions of lengths 1..70)")  # fmt: skip
    for graph in manifest["graphs"].values():
        fixed = graph.get("fixed_width")
        width = f", fixed widths {fixed}" if fixed else ""
        print(f"  {graph['file']}: ({', '.join(graph['inputs'])}) -> {graph['output']}{width}")
    index = manifest.get("index")
    if index:
        recall = (
            f", recall@20 of the exact top-20 {index['recall@20']:.3f} "
            f"({index['recall_measured_on']})"
            if "recall@20" in index
            else " (exact)"
        )
        print(f"  index.faiss: {index['kind']}{recall}")
    if args.verbose:
        print(json.dumps(manifest, indent=2))


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export", parents=parents,
        help="export a checkpoint (or a pipeline) to ONNX, item table and faiss index",
    )  # fmt: skip
    p.add_argument("checkpoint", help="the model (graphrec checkpoint, best.pt)")
    p.add_argument("--out", required=True, help="the folder to create")
    p.add_argument("--ranker", default=None, help="a ranker checkpoint: export the pipeline")
    p.add_argument("-k", type=common.positive_int, default=100, help="pipeline candidates")
    p.add_argument("--index", choices=["flat", "hnsw", "ivf", "none"], default="flat",
                   help="the faiss index over the item table (default: flat, exact)")  # fmt: skip
    p.add_argument("--hnsw-m", type=common.positive_int, default=32)
    p.add_argument("--ef-search", type=common.positive_int, default=128)
    p.add_argument("--nprobe", type=common.positive_int, default=32)
    p.add_argument("--max-length", type=common.positive_int, default=70,
                   help="the session width of models with recurrences (SDM, DIEN)")  # fmt: skip
    p.add_argument("--max-history", type=common.positive_int, default=50,
                   help="the history width of models with recurrences")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing export")
    p.set_defaults(func=cmd_export)
