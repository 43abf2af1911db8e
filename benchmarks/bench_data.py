"""Graph building and batching speed on all 719,470 Diginetica training samples.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_data.py

Targets on a 2-core machine: build < 60 s, <= 1 GiB added memory, collate >= 30,000
samples/s for batches of 100 (data must cost < 10% of a training step).
"""

from __future__ import annotations

import gc
import time

import torch
from _common import data_root_or_exit, rss_mib
from torch_geometric.data import Batch

from graphrec.data import collate
from graphrec.datasets import load_benchmark


def main() -> None:
    root = data_root_or_exit()
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    ds = load_benchmark("diginetica", root=root, valid_fraction=0, cache=False)
    build = time.perf_counter() - start
    added = rss_mib() - before
    print(f"samples                 {len(ds):,} ({ds.num_clicks:,} clicks, {ds.num_items:,} items)")
    print(f"read + augment + build  {build:.2f} s   (target < 60 s)")
    print(f"resident memory added   {added:.0f} MiB (target <= 1024 MiB)")

    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    batches = [perm[i : i + 100] for i in range(0, 200_000, 100)]
    start = time.perf_counter()
    for idx in batches:
        ds.batch(idx)
    fast = 200_000 / (time.perf_counter() - start)
    print(f"SessionDataset.batch    {fast:,.0f} samples/s (batches of 100; target >= 30,000)")

    lists = [[ds[int(i)] for i in idx] for idx in batches[:100]]
    start = time.perf_counter()
    for data_list in lists:
        collate(data_list)
    ours = 10_000 / (time.perf_counter() - start)
    start = time.perf_counter()
    for data_list in lists:
        Batch.from_data_list(data_list)
    pyg = 10_000 / (time.perf_counter() - start)
    print(f"collate(list)           {ours:,.0f} samples/s")
    print(f"Batch.from_data_list    {pyg:,.0f} samples/s (PyG on the same lists)")
    print(f"collate / PyG           {ours / pyg:.1f}x")


if __name__ == "__main__":
    main()
