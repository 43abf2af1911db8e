"""Loading and batching speed on all 719,470 Diginetica training samples.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_data.py

A :class:`SessionDataset` stores the sessions once and builds each batch's
graphs when the batch is drawn. The script measures it against storing every
sample's graph, built once in advance (what graphrec did up to dataset format
3; :class:`Prebuilt` below holds the same arrays and gathers batches the way
it did), in the same run: the memory each takes, and batches and SR-GNN
training fed by each, in alternating rounds. Targets on a 2-core machine: load
< 60 s, stored tensors <= 1/3 of the prebuilt graphs, batches >= 30,000
samples/s for batches of 100 and not slower than gathering prebuilt graphs
(data must cost < 10% of a training step).

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

import numpy as np
import torch
from _common import data_root_or_exit, rounds, rss_mib
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from graphrec import SRGNN
from graphrec.data import SessionDataset, SessionLoader, build_session_graphs, collate
from graphrec.data.collate import store_batch
from graphrec.data.dataset import _positions
from graphrec.datasets import load_benchmark


def _segments(ptr: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, ...]:
    starts = ptr[index]
    counts = ptr[index + 1] - starts
    out_ptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    return np.arange(out_ptr[-1]) + np.repeat(starts - out_ptr[:-1], counts), counts, out_ptr


class Prebuilt:
    """Every sample's graph built once and stored flat, batches gathered from
    them with numpy views: the storage graphrec used up to format 3."""

    def __init__(self, ds: SessionDataset) -> None:
        start, length = ds.windows(np.arange(len(ds)))
        clicks = ds.sessions[0][_positions(torch.from_numpy(start), torch.from_numpy(length))]
        self.graphs = build_session_graphs(clicks, torch.from_numpy(length), ds.weighting)
        self.y = ds.y

    def nbytes(self) -> int:
        g = self.graphs
        parts = (g.x, g.node_ptr, g.alias, g.click_ptr, g.edge_index, g.edge_ptr)
        parts += (g.edge_weight_in, g.edge_weight_out, self.y)
        return sum(t.numel() * t.element_size() for t in parts)

    def batch(self, index: torch.Tensor):
        ix, g, t = index.numpy(), self.graphs, torch.from_numpy
        node_pos, node_counts, node_ptr = _segments(g.node_ptr.numpy(), ix)
        click_pos, click_counts, click_ptr = _segments(g.click_ptr.numpy(), ix)
        edge_pos, edge_counts, edge_ptr = _segments(g.edge_ptr.numpy(), ix)
        node_inc = node_ptr[:-1]
        return store_batch(
            x=t(g.x.numpy()[node_pos]),
            alias=t(g.alias.numpy()[click_pos] + np.repeat(node_inc, click_counts)),
            edge_index=t(g.edge_index.numpy()[:, edge_pos] + np.repeat(node_inc, edge_counts)),
            edge_weight_in=t(g.edge_weight_in.numpy()[edge_pos]),
            edge_weight_out=t(g.edge_weight_out.numpy()[edge_pos]),
            node_ptr=t(node_ptr),
            click_ptr=t(click_ptr),
            edge_ptr=t(edge_ptr),
            node_batch=t(np.repeat(np.arange(ix.size), node_counts)),
            y=self.y[index],
        )


def stored_bytes(ds: SessionDataset) -> int:
    state = ds.state_dict()
    return sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))


def main() -> None:
    root = data_root_or_exit()
    gc.collect()
    before = rss_mib()
    start = time.perf_counter()
    ds = load_benchmark("diginetica", root=root, valid_fraction=0, cache=False)
    build = time.perf_counter() - start
    added = rss_mib() - before
    print(f"samples                 {len(ds):,} ({ds.num_clicks:,} clicks, {ds.num_items:,} items)")
    print(f"read + augment          {build:.2f} s   (target < 60 s)")
    print(f"resident memory added   {added:.0f} MiB")
    start = time.perf_counter()
    prebuilt = Prebuilt(ds)
    print(f"prebuilding all graphs  {time.perf_counter() - start:.2f} s (the old storage)")
    ours, theirs = stored_bytes(ds), prebuilt.nbytes()
    print(
        f"stored tensors          {ours / 2**20:.1f} MiB; prebuilt graphs {theirs / 2**20:.1f} MiB"
        f" = {ours / theirs:.2f}x (target <= 0.33x)"
    )

    perm = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))
    batches = [perm[i : i + 100] for i in range(0, 200_000, 100)]
    for i in range(0, len(batches), 97):  # the same batches, tensor for tensor
        mine, old = ds.batch(batches[i]), prebuilt.batch(batches[i])
        assert all(torch.equal(mine[k], old[k]) for k in old.keys()), "batches differ"

    def draw(source):
        feed = iter(batches)
        return lambda: source.batch(next(feed))

    seconds = rounds({"cuts": draw(ds), "prebuilt": draw(prebuilt)}, 200, 9, torch.device("cpu"))
    rate = {name: 100 / s for name, s in seconds.items()}
    print(
        f"SessionDataset.batch    {rate['cuts']:,.0f} samples/s (batches of 100; target >= "
        f"30,000); gathering prebuilt graphs {rate['prebuilt']:,.0f} = "
        f"{rate['cuts'] / rate['prebuilt']:.2f}x"
    )

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
    loader = SessionLoader(ds, batch_size=100, shuffle=True, seed=0)
    order = loader.order()
    feeds = {
        "SessionLoader": iter(loader),
        "PyG DataLoader": iter(DataLoader(ds, batch_size=100, shuffle=True)),
        "prebuilt": (prebuilt.batch(order[i : i + 100]) for i in range(0, len(ds), 100)),
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
        f"{rate['PyG DataLoader']:,.0f} (PyG DataLoader) = {ratio:.0%} (target >= 90%), "
        f"{rate['prebuilt']:,.0f} (prebuilt graphs) = "
        f"{rate['SessionLoader'] / rate['prebuilt']:.2f}x"
    )


if __name__ == "__main__":
    main()
