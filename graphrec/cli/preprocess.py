"""``graphrec preprocess``: a raw log (Diginetica, YooChoose, your own clicks) -> a folder."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from graphrec.cli import common
from graphrec.datasets import (
    from_click_log,
    load_dataset,
    preprocess_diginetica,
    preprocess_yoochoose,
)
from graphrec.datasets.benchmark import SPLITS


def memory_limit(text: str) -> str:
    """``--memory-limit``: a size or a share, checked."""
    from graphrec.datasets.duck import parse_memory_limit

    try:
        return parse_memory_limit(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def write_processed(folder: Path, args: argparse.Namespace) -> None:
    """Build the processed file of every split of ``folder`` for the data
    options of ``graphrec train`` (``--valid-fraction``, ``--max-length``,
    ``--history-length``), so that training opens them instead of building."""
    options = {"valid_fraction": args.valid_fraction, "max_length": args.max_length}
    options["history_length"] = args.history_length
    for split in SPLITS:
        if split == "valid" and args.valid_fraction == 0:
            continue
        start = time.perf_counter()
        data = load_dataset(folder, split, cache=True, **options)
        seconds = time.perf_counter() - start
        print(f"{folder}: {split} processed, {len(data):,} samples ({seconds:.1f} s)")


def cmd_preprocess(args: argparse.Namespace) -> None:
    if args.sql is not None:
        write_sql(args)
        return
    engine = {
        "engine": args.engine,
        "memory_limit": args.memory_limit,
        "threads": None if args.threads == "auto" else args.threads,
        "progress": not args.no_progress,
    }
    if args.source == "clicks":
        stats = from_click_log(
            args.raw,
            args.out,
            session=None if args.session_col in ("", "none") else args.session_col,
            item=args.item_col,
            time=None if args.time_col in ("", "none") else args.time_col,
            user=args.user_col,
            sep=args.sep,
            time_format=args.time_format,
            time_unit=args.time_unit,
            mode=args.mode,
            min_item_support=args.min_item_support,
            min_session_length=args.min_session_length,
            test_days=args.test_days,
            test_fraction=args.test_fraction,
            duplicates=args.duplicates,
            unsorted=args.unsorted,
            encoding=args.encoding,
            text_ids=args.text_ids,
            item_features=args.item_features,
            item_feature_cols=_names(args.item_feature_cols),
            user_features=args.user_features,
            user_feature_cols=_names(args.user_feature_cols),
            multi_valued=_names(args.multi_valued),
            value_sep=args.value_sep,
            context_cols=_names(args.context_cols),
            time_context=_names(args.time_context),
            **engine,
        )
        print(json.dumps(stats, indent=2))
        if args.processed:
            write_processed(Path(args.out), args)
        print(f"\nwritten to {args.out}/; train with: graphrec train --dataset {args.out}")
        return
    if args.out is None:
        args.out = "datasets"
    if args.source == "diginetica":
        stats = preprocess_diginetica(args.raw, args.out, **engine)
        folders = [Path(args.out) / "diginetica"]
    else:
        stats = preprocess_yoochoose(args.raw, args.out, fractions=tuple(args.fractions), **engine)
        folders = [Path(args.out) / f"yoochoose1_{f}" for f in args.fractions]
    print(json.dumps(stats, indent=2))
    if args.processed:
        for folder in folders:
            write_processed(folder, args)


def write_sql(args: argparse.Namespace) -> None:
    """``--sql FILE``: the protocol's SQL for these options, to run on another engine."""
    from graphrec.datasets import sql

    if args.source == "clicks":
        session = None if args.session_col in ("", "none") else args.session_col
        mode = args.mode or ("session" if session is not None else "sequential")
        has_time = args.time_col not in ("", "none")
        options = {
            "min_item_support": args.min_item_support,
            "min_session_length": args.min_session_length,
            "test_days": None if args.test_fraction is not None else args.test_days,
            "test_fraction": args.test_fraction,
            "duplicates": args.duplicates,
        }
        text = sql.click_log_script(mode, options, has_time)
    else:
        text = sql.script(
            ("session",),
            test_days=7 if args.source == "diginetica" else 1,
            item_order="first_seen",
        )
    Path(args.sql).write_text(text)
    print(f"{args.sql}: the {args.source} protocol as SQL ({len(sql.statements(text))} statements)")


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "preprocess",
        parents=parents,
        help="a raw log (Diginetica, YooChoose, or your own clicks) -> a dataset folder",
    )
    p.add_argument("source", choices=["diginetica", "yoochoose", "clicks"])
    p.add_argument(
        "raw", help="train-item-views.csv, yoochoose-clicks.dat, or your CSV/TSV/Parquet log"
    )
    p.add_argument(
        "--out",
        default=None,
        help="diginetica/yoochoose: the data root to write into (default: datasets); "
        "clicks: the dataset folder to write (required)",
    )
    p.add_argument(
        "--fractions", type=common.positive_int, nargs="+", default=[64, 4], help="YooChoose 1/N"
    )
    g = p.add_argument_group("engine (the same files either way)")
    g.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "duckdb", "pandas"],
        help="duckdb: out of core, spilling to disk (pip install graphrec[scale]); pandas: in "
        "memory; auto (default): duckdb when installed",
    )
    g.add_argument(
        "--memory-limit",
        type=memory_limit,
        default=None,
        help="DuckDB's memory limit: 8GB, 500MB, or a share of the machine's memory (0.3); "
        "default: 4x the log's size, at least 1 GiB, at most a quarter of the memory",
    )
    g.add_argument("--threads", type=common.threads, default="auto", help="DuckDB's threads")
    g.add_argument("--no-progress", action="store_true", help="no progress bar per stage")
    g.add_argument(
        "--sql",
        metavar="FILE",
        default=None,
        help="write the protocol's SQL for these options to FILE (for Spark etc.) and stop",
    )
    g = p.add_argument_group("processed files (what training opens; memory-mapped)")
    g.add_argument(
        "--processed",
        action="store_true",
        help="also build the processed file of every split, for the options below "
        "(those of graphrec train), so that training never builds them",
    )
    g.add_argument("--valid-fraction", type=common.holdout_fraction, default=0.1)
    g.add_argument("--max-length", type=common.positive_int, default=None)
    g.add_argument("--history-length", type=common.nonnegative_int, default=0)
    g = p.add_argument_group("clicks (your own log; defaults: the SR-GNN reference protocol)")
    g.add_argument("--session-col", default="session_id", help="'none' for sequential mode")
    g.add_argument("--item-col", default="item_id")
    g.add_argument("--time-col", default="timestamp", help="'none' keeps file order (sequential)")
    g.add_argument("--user-col", default=None, help="needed in sequential mode")
    g.add_argument("--sep", default=None, help="field separator (default: guessed)")
    g.add_argument("--time-format", default=None, help="e.g. %%Y-%%m-%%d (default: number/ISO)")
    g.add_argument("--time-unit", default="s", choices=["s", "ms", "us", "ns"])
    g.add_argument("--mode", default=None, choices=["session", "sequential"])
    g.add_argument("--min-item-support", type=common.positive_int, default=5)
    g.add_argument("--min-session-length", type=common.session_length, default=2)
    g.add_argument(
        "--test-days", type=common.positive_float, default=7, help="test = the last N days"
    )
    g.add_argument(
        "--test-fraction", type=common.open_fraction, default=None, help="or the latest share"
    )
    g.add_argument("--duplicates", default="keep", choices=["keep", "drop", "error"])
    g.add_argument("--unsorted", default="sort", choices=["sort", "error"])
    g.add_argument(
        "--encoding", default="utf-8", help="text encoding of the log (e.g. latin-1, cp1252)"
    )
    g.add_argument(
        "--text-ids", action="store_true", help="keep every id as text, even all-integer ones"
    )
    g = p.add_argument_group(
        "side fields (clicks): a product table, a user profile table, per-click context"
    )
    g.add_argument(
        "--item-features", default=None, metavar="FILE",
        help="CSV/TSV/Parquet: one row per item, its id in the --item-col column",
    )  # fmt: skip
    g.add_argument("--item-feature-cols", default=None, help="e.g. brand,category (default: all)")
    g.add_argument(
        "--user-features", default=None, metavar="FILE",
        help="CSV/TSV/Parquet: one row per user, its id in the --user-col column",
    )  # fmt: skip
    g.add_argument("--user-feature-cols", default=None, help="e.g. age,gender (default: all)")
    g.add_argument(
        "--multi-valued", default=None, help="columns holding several values, e.g. genres"
    )
    g.add_argument("--value-sep", default="|", help="separator of multi-valued values")
    g.add_argument(
        "--context-cols", default=None,
        help="per-click context columns of the log, e.g. device,country",
    )  # fmt: skip
    g.add_argument(
        "--time-context",
        default=None,
        help="context fields of each click's time: hour,weekday (UTC)",
    )
    p.set_defaults(func=cmd_preprocess)


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list of column names."""
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]
