"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import torch


def data_root_or_exit() -> Path:
    root = Path(os.environ.get("GRAPHREC_DATA", "datasets"))
    if not (root / "diginetica" / "train_sessions.txt").is_file():
        sys.exit(f"Diginetica not found under {root}: set GRAPHREC_DATA (e.g. ../shared/datasets)")
    return root


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a GPU's), so that a timer reads it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list):
    """A function running one training step of ``model`` per call, cycling ``batches``."""
    state = {"i": 0}

    def step() -> None:
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        optimizer.zero_grad(set_to_none=True)
        model.loss(batch).backward()
        optimizer.step()

    return step


def rounds(
    fns: dict[str, Callable[[], object]],
    calls: int,
    count: int,
    device: torch.device,
    warmup: int = 5,
) -> dict[str, float]:
    """Median seconds per call of each function, timed in ``count`` rounds
    taken in turn (one, the other, one, ...), so that a machine whose speed
    drifts slows every function alike. Each first runs ``warmup`` times."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for _ in range(count):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            sync(device)
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(t) for name, t in times.items()}
