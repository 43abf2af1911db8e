"""Graph building and batching speed on all 719,470 Diginetica training samples.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_data.py

Targets on a 2-core machine: build < 60 s, <= 1 GiB added memory, collate >= 30,000
samples/s for batches of 100 (data must cost < 10% of a training step).

Then PyG's own idiom, ``torch_geometric.loader.DataLoader(dataset, batch_size=100,
shuffle=True)``: its samples/s (target >= 15,000; the dataset hands the loader
whole pre-collated batches, ``SessionDataset.fetch_collated``), the same loader
with that turned off (``precollate = False``: one ``SessionData`` per sample and
PyG's per-sample collation), and SR-GNN training (exact, fused Adam) fed by it
against the trainer's path (``SessionLoader``), in alternating rounds (target:
>= 90% of the trainer path's samples/s).
"""

from __future__ import annotations

import gc
import time

import torch
from _common import data_root_or_exit, rounds, rss_mib
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from graphrec import SRGNN
from graphrec.data import SessionLoader, collate
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

    for precollate in (True, False):
        ds.precollate = precollate
        loader = DataLoader(ds, batch_size=100, shuffle=True)
        count = 300 if precollate else 50
        start = time.perf_counter()
        seen = sum(b.num_graphs for b, _ in zip(loader, range(count), strict=False))
        rate = seen / (time.perf_counter() - start)
        label = "pre-collated (default)" if precollate else "precollate=False"
        print(f"PyG DataLoader          {rate:,.0f} samples/s, {label}")
    ds.precollate = True

    torch.manual_seed(0)
    model = SRGNN(ds.num_items)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=True)
    feeds = {
        "SessionLoader": iter(SessionLoader(ds, batch_size=100, shuffle=True, seed=0)),
        "PyG DataLoader": iter(DataLoader(ds, batch_size=100, shuffle=True)),
    }

    def train_from(feed):
        def step() -> None:
            opt.zero_grad(set_to_none=True)
            model.loss(next(feed)).backward()
            opt.step()

        return step

    steps = {name: train_from(feed) for name, feed in feeds.items()}
    seconds = rounds(steps, 40, 5, torch.device("cpu"), warmup=40)
    rate = {name: 100 / s for name, s in seconds.items()}
    ratio = rate["PyG DataLoader"] / rate["SessionLoader"]
    print(
        f"SR-GNN training         {rate['SessionLoader']:,.0f} samples/s (SessionLoader), "
        f"{rate['PyG DataLoader']:,.0f} (PyG DataLoader) = {ratio:.0%} (target >= 90%)"
    )


if __name__ == "__main__":
    main()
