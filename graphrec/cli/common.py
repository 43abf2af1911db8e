"""What several commands share: argument types, help texts, data and checkpoint helpers."""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
from pathlib import Path

from graphrec.checks import check_device
from graphrec.datasets import DATASETS, is_sequential, load_dataset
from graphrec.models.base import popularity_reference
from graphrec.threads import configure_threads
from graphrec.training import load_model

log = logging.getLogger("graphrec")

THREADS_HELP = (
    "CPU threads: a number, or auto (default): the CPUs available to the process "
    "(affinity, cgroup quota), less those other processes keep busy; one for small models"
)

REUSE_HELP = (
    "leave malloc's thresholds alone (by default freed CPU memory is kept for the next "
    "step: no page faults for the large buffers; the process keeps its peak memory)"
)

TRUST_HELP = (
    "evaluate even though the item popularity of the data does not follow the training "
    "data's (graphrec then takes it that the ids mean the same items)"
)

DATASET_HELP = (
    f"one of {', '.join(DATASETS)}, or the path of a folder written by "
    "`graphrec preprocess clicks` (or holding train_sessions.txt and test_sessions.txt)"
)


def _number(text: str, cast, what: str):
    try:
        return cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def _finite(text: str) -> float:
    value = _number(text, float, "a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def _checked(cast, ok, rule: str):
    """An argparse type: ``cast`` the text (``int``, or a finite float), then
    refuse values for which ``ok`` is false, saying ``rule``."""

    def parse(text: str):
        value = _number(text, int, "an integer") if cast is int else _finite(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must {rule}, got {value:g}")
        return value

    return parse


positive_int = _checked(int, lambda v: v >= 1, "be >= 1")
nonnegative_int = _checked(int, lambda v: v >= 0, "be >= 0")
#: ``--min-session-length``: a session needs two clicks to give a sample
session_length = _checked(int, lambda v: v >= 2, "be >= 2 (one click gives no sample)")
positive_float = _checked(float, lambda v: v > 0, "be > 0")
nonnegative_float = _checked(float, lambda v: v >= 0, "be >= 0")
decay_factor = _checked(float, lambda v: 0 < v <= 1, "lie in (0, 1] (1 = no decay)")
holdout_fraction = _checked(float, lambda v: 0 <= v < 1, "lie in [0, 1)")
open_fraction = _checked(float, lambda v: 0 < v < 1, "lie in (0, 1)")


def int_list(text: str) -> list[int]:
    """``--seeds 0,1,2``."""
    values = [t.strip() for t in text.split(",") if t.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got nothing")
    return [_number(v, int, "comma-separated integers") for v in values]


def device(text: str) -> str:
    """``--device``: checked before any work (a name torch knows, and present)."""
    try:
        check_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def threads(text: str) -> int | str:
    """``--threads``: a positive number or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def data_kwargs(args: argparse.Namespace) -> dict:
    kwargs = {
        "root": args.root,
        "valid_fraction": args.valid_fraction,
        "max_length": args.max_length,
        "history_length": args.history_length,
    }
    if args.dataset != "synthetic":
        kwargs["cache"] = not args.no_cache
    return kwargs


def negatives(args: argparse.Namespace, dataset: str) -> int | None:
    """Sampled negatives: the flag, else 100 on user-sequential data (their
    protocol) or when the monitored metric is a sampled one."""
    if args.negatives is not None:
        return args.negatives or None
    monitor = getattr(args, "monitor", None) or ""
    return 100 if is_sequential(dataset) or monitor.endswith(" neg.)") else None


def eval_negatives(args: argparse.Namespace, dataset: str, model) -> int | None:
    """As :func:`negatives`; a ranker (DIN, DIEN) is also evaluated on 100 by default."""
    if args.negatives is None and not model.cheap_full_ranking:
        return 100
    return negatives(args, dataset)


def configure_model_threads(args: argparse.Namespace, model) -> None:
    requested = None if args.threads == "auto" else args.threads
    configure_threads(model.num_items * getattr(model, "hidden_channels", 1), requested)


def checkpoint_data(args: argparse.Namespace, state: dict) -> tuple[str, dict]:
    """The dataset a checkpoint was trained on (``--dataset`` overrides) and its options."""
    info = state.get("run_info", {})
    name = args.dataset or info.get("dataset")
    if name is None:
        raise ValueError("the checkpoint names no dataset: pass --dataset")
    kwargs = {
        "root": args.root,
        "valid_fraction": info.get("valid_fraction", 0.1),
        "max_length": info.get("max_length"),
        "history_length": info.get("history_length", 0),
    }
    if name != "synthetic":
        kwargs["cache"] = not args.no_cache
    return name, kwargs


def load_retriever(args: argparse.Namespace, data):
    """The ``--retriever`` checkpoint, checked against ``data``."""
    if getattr(args, "retriever", None) is None:
        return None
    retriever = load_model(args.retriever, map_location=args.device or "cpu")
    if not retriever.cheap_full_ranking:
        raise ValueError(
            f"--retriever {args.retriever} is a {type(retriever).__name__}, a ranker: it "
            "scores the whole catalogue with one forward pass per item. Retrieve with "
            "SR-GNN, STAMP, AttRec or SDM and pass the ranker as "
            + ("--ranker" if args.command == "evaluate" else "--model")
        )
    check_model_data(retriever, data, f"--retriever {args.retriever}", args)
    return retriever.eval()


def check_model_data(
    model, data, what: str, args: argparse.Namespace, state: dict | None = None
) -> None:
    """``model.check_data`` (catalogue, users, categories, training popularity),
    honouring ``--trust-item-ids``.

    A checkpoint of an older graphrec keeps no training popularity; when it
    meets another dataset than its own, the popularity of its own training split
    is read instead (where that dataset is at hand), so the check still runs.
    """
    if getattr(args, "trust_item_ids", False):
        model.popularity_reference = None
    elif getattr(model, "popularity_reference", None) is None and state is not None:
        info = state.get("run_info", {})
        own = info.get("dataset")
        if own is not None and str(own) != str(getattr(args, "dataset", None) or own):
            try:
                kwargs = {"root": args.root, "valid_fraction": info.get("valid_fraction", 0.1)}
                if own != "synthetic":
                    kwargs["cache"] = not getattr(args, "no_cache", False)
                model.popularity_reference = popularity_reference(
                    load_dataset(own, "train", **kwargs)
                )
            except (OSError, ValueError) as e:
                log.info("%s: its training data %s is not at hand (%s)", what, own, e)
    model.check_data(data, what)


def resume_command(run_dir: Path) -> str:
    """The command line that continues an interrupted run."""
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    if not argv:
        return f"graphrec train ... --run-dir {shlex.quote(str(run_dir))} --resume"
    return shlex.join(["graphrec", *argv, "--resume"])
