"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil


def data_root_or_exit() -> Path:
    root = Path(os.environ.get("GRAPHREC_DATA", "datasets"))
    if not (root / "diginetica" / "train_sessions.txt").is_file():
        sys.exit(f"Diginetica not found under {root}: set GRAPHREC_DATA (e.g. ../shared/datasets)")
    return root


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20
