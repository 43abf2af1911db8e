"""What per-click context costs: ``from_click_log`` and ``load_click_log`` of a generated
log with and without context fields, on each engine, in one run.

    python benchmarks/bench_context.py [--rows 1000000] [--engines pandas,duckdb]

The log has sessions of geometric length, long-tailed items over 60 days, and a
``device`` column (four values and empty ones); the context runs add
``context_cols=["device"]`` and ``time_context=["hour", "weekday"]``. Printed: the
seconds of each step and the ratio with context / without. Target: context costs a
fraction of the preprocessing, not a multiple.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.datasets import from_click_log, load_click_log


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lengths = 1 + rng.geometric(0.25, size=rows // 3)
    lengths = lengths[np.cumsum(lengths) <= rows]
    sessions = np.repeat(np.arange(lengths.size), lengths)
    popularity = 1.0 / np.arange(1, 50_001) ** 0.9
    items = rng.choice(50_000, size=sessions.size, p=popularity / popularity.sum())
    start = np.repeat(rng.integers(0, 60 * 86_400, size=lengths.size), lengths)
    step = np.concatenate([np.arange(n) for n in lengths]) * 40
    devices = np.array(["mobile", "desktop", "tablet", "tv", ""])
    pd.DataFrame(
        {
            "session_id": sessions,
            "item_id": items,
            "timestamp": 1_700_000_000 + start + step,
            "device": devices[rng.integers(0, 5, size=sessions.size)],
        }
    ).to_csv(path, index=False)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="pandas,duckdb")
    args = parser.parse_args()
    context = {"context_cols": ["device"], "time_context": ["hour", "weekday"]}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "clicks.csv"
        write_log(log, args.rows)
        print(f"log: {args.rows:,} rows")
        print(f"{'engine':8} {'step':22} {'plain (s)':>10} {'context (s)':>12} {'ratio':>6}")
        for engine in args.engines.split(","):
            seconds = {}
            for label, kwargs in (("plain", {}), ("context", context)):
                out = Path(tmp) / f"{engine}-{label}"
                seconds[label, "from_click_log"] = timed(
                    lambda out=out, kwargs=kwargs, engine=engine: from_click_log(
                        log, out, engine=engine, test_days=7, **kwargs
                    )
                )
                seconds[label, "load_click_log"] = timed(
                    lambda out=out: load_click_log(out, "train", cache=False)
                )
            for step in ("from_click_log", "load_click_log"):
                plain, ctx = seconds["plain", step], seconds["context", step]
                print(f"{engine:8} {step:22} {plain:10.1f} {ctx:12.1f} {ctx / plain:6.2f}")


if __name__ == "__main__":
    main()
