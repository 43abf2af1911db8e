"""One entry point for every dataset name the CLI and the examples accept."""

from __future__ import annotations

import os
from typing import Any

from graphrec.data import SessionDataset
from graphrec.datasets.benchmark import BENCHMARKS, load_benchmark
from graphrec.datasets.sequential import SEQUENTIAL, load_sequential
from graphrec.datasets.synthetic import DEMO_SIZE, synthetic

DATASETS = (*BENCHMARKS, *SEQUENTIAL, "synthetic")


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    valid_fraction: float = 0.1,
    weighting: str = "binary",
    max_length: int | None = None,
    seed: int = 0,
    history_length: int = 0,
    **kwargs: Any,
) -> SessionDataset:
    """A split of a session benchmark, a user-sequential benchmark or the synthetic default.

    ``"synthetic"`` is the demo-sized synthetic log (50,000 sessions, 3,000
    items); ``kwargs`` override its size or pass options to
    :func:`load_benchmark` (``cache``, ``cache_dir``, ``valid_mode``).
    ``"amazon-games"`` is read by :func:`load_sequential` (leave-one-out):
    ``valid_fraction > 0`` holds each user's second-to-last item out for
    validation, ``0`` trains on all but the test item; ``max_length``
    defaults to 50 there.
    """
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
    if name not in BENCHMARKS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
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
