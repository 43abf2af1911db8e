"""One entry point for every dataset name the CLI and the examples accept."""

from __future__ import annotations

import os
from typing import Any

from graphrec.data import SessionDataset
from graphrec.datasets.benchmark import BENCHMARKS, load_benchmark
from graphrec.datasets.synthetic import DEMO_SIZE, synthetic

DATASETS = (*BENCHMARKS, "synthetic")


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    valid_fraction: float = 0.1,
    weighting: str = "binary",
    max_length: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> SessionDataset:
    """A split of a benchmark (:func:`load_benchmark`) or of the synthetic default.

    ``"synthetic"`` is the demo-sized synthetic log (50,000 sessions, 3,000
    items); ``kwargs`` override its size or pass options to
    :func:`load_benchmark` (``cache``, ``cache_dir``, ``valid_mode``).
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
        seed=seed,
        **kwargs,
    )
