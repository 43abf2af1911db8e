"""Raw-log preprocessing speed on a generated log the size of Diginetica's.

    python benchmarks/bench_preprocess.py [--rows 1200000]

The real ``train-item-views.csv`` has about 1.2 million rows and cannot be
redistributed. This writes a log of that size in its format (about 310k
sessions, 120k items with a long-tailed popularity, 150 days) to a temporary
folder and times ``preprocess_diginetica`` on it. Target: seconds, not minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from graphrec.datasets import preprocess_diginetica


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lengths = 1 + rng.geometric(0.3, size=rows // 3)
    lengths = lengths[np.cumsum(lengths) <= rows]
    sessions = np.repeat(np.arange(1, lengths.size + 1), lengths)
    popularity = 1.0 / np.arange(1, 120_001) ** 0.9
    items = rng.choice(120_000, size=sessions.size, p=popularity / popularity.sum()) + 1
    day = np.repeat(rng.integers(0, 150, size=lengths.size), lengths)
    dates = (np.datetime64("2016-01-01") + day).astype(str)
    pd.DataFrame(
        {
            "session_id": sessions,
            "user_id": "NA",
            "item_id": items,
            "timeframe": rng.integers(0, 5_000_000, size=sessions.size),
            "eventdate": dates,
        }
    ).to_csv(path, sep=";", index=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "train-item-views.csv"
        write_log(raw, args.rows)
        start = time.perf_counter()
        stats = preprocess_diginetica(raw, tmp)
        seconds = time.perf_counter() - start
    print(f"rows                {stats['raw_clicks']:,}")
    print(
        f"sessions kept       {stats['train_sessions']:,} train / {stats['test_sessions']:,} test"
    )
    print(f"preprocess_diginetica  {seconds:.1f} s")


if __name__ == "__main__":
    main()
