"""One entry point for every dataset name the CLI and the examples accept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from graphrec.data import SessionDataset
from graphrec.datasets.benchmark import BENCHMARKS, load_benchmark, load_session_folder
from graphrec.datasets.clicklog import is_click_log_folder, load_click_log, read_meta
from graphrec.datasets.sequential import SEQUENTIAL, load_sequential
from graphrec.datasets.synthetic import DEMO_SIZE, synthetic

DATASETS = (*BENCHMARKS, *SEQUENTIAL, "synthetic")


def _folder(name: str | os.PathLike) -> Path | None:
    """``name`` as a dataset folder (a path, not a known dataset name), else ``None``."""
    if str(name) in DATASETS:
        return None
    path = Path(name)
    if path.is_dir():
        return path
    raise ValueError(
        f"unknown dataset {str(name)!r}: neither one of {DATASETS} nor a folder "
        "(a folder written by `graphrec preprocess clicks`, or one with "
        "train_sessions.txt and test_sessions.txt)"
    )


def is_sequential(name: str | os.PathLike) -> bool:
    """Whether a dataset (name or folder) is user-sequential (leave-one-out)."""
    folder = _folder(name)
    if folder is None:
        return str(name) in SEQUENTIAL
    return is_click_log_folder(folder) and read_meta(folder)["mode"] == "sequential"


def dataset_label(name: str | os.PathLike) -> str:
    """How tables and run directories name a dataset: its name, or its folder's."""
    folder = _folder(name)
    if folder is None:
        return str(name)
    return read_meta(folder)["name"] if is_click_log_folder(folder) else folder.resolve().name


def load_dataset(
    name: str | os.PathLike,
    split: str = "train",
    root: str | os.PathLike | None = None,
    valid_fraction: float = 0.1,
    weighting: str = "binary",
    max_length: int | None = None,
    seed: int = 0,
    history_length: int = 0,
    **kwargs: Any,
) -> SessionDataset:
    """A split of a session benchmark, a user-sequential benchmark, the synthetic
    default, or a dataset folder.

    ``name`` may be a path wherever a dataset name is accepted: a folder
    written by :func:`~graphrec.datasets.from_click_log` (``graphrec
    preprocess clicks``) is read by :func:`~graphrec.datasets.load_click_log`,
    any other folder with ``train_sessions.txt`` and ``test_sessions.txt`` as
    a benchmark is (``root`` is then ignored).

    ``"synthetic"`` is the demo-sized synthetic log (50,000 sessions, 3,000
    items); ``kwargs`` override its size or pass options to
    :func:`load_benchmark` (``cache``, ``cache_dir``, ``valid_mode``).
    ``"amazon-games"`` is read by :func:`load_sequential` (leave-one-out):
    ``valid_fraction > 0`` holds each user's second-to-last item out for
    validation, ``0`` trains on all but the test item; ``max_length``
    defaults to 50 there.
    """
    folder = _folder(name)
    if folder is not None:
        if is_click_log_folder(folder):
            unknown = set(kwargs) - {"cache", "cache_dir"}
            if unknown:
                raise ValueError(f"{folder}: unsupported option(s) {sorted(unknown)}")
            return load_click_log(
                folder,
                split=split,
                valid_fraction=valid_fraction,
                weighting=weighting,
                max_length=max_length,
                history_length=history_length,
                **kwargs,
            )
        return load_session_folder(
            folder,
            split=split,
            valid_fraction=valid_fraction,
            weighting=weighting,
            max_length=max_length,
            history_length=history_length,
            seed=seed,
            **kwargs,
        )
    if name == "synthetic":
        size = {**DEMO_SIZE, **kwargs}
        return synthetic(
            **size,
            seed=seed,
            split=split,
            valid_fraction=valid_fraction,
            weighting=weighting,
            max_length=max_length,
            history_length=history_length,
        )
    if name in SEQUENTIAL:
        unknown = set(kwargs) - {"cache", "cache_dir"}  # nothing is cached: it loads in ~1 s
        if unknown:
            raise ValueError(f"{name}: unsupported option(s) {sorted(unknown)}")
        return load_sequential(
            name,
            root=root,
            split=split,
            max_length=50 if max_length is None else max_length,
            history_length=history_length,
            valid=valid_fraction > 0,
            weighting=weighting,
        )
    return load_benchmark(
        name,
        root=root,
        split=split,
        valid_fraction=valid_fraction,
        weighting=weighting,
        max_length=max_length,
        history_length=history_length,
        seed=seed,
        **kwargs,
    )
