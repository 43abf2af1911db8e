"""SR-GNN training throughput and full test evaluation time on Diginetica.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_srgnn.py [--steps 300]

Exact model (full softmax over 43,097 items), batch 100, hidden 100, Adam. In the
same process, for ratios: the same step with the unfused loss (matmul +
F.cross_entropy) and torch's default (unfused) Adam, and the floor: the three
full-softmax matmuls of a batch alone. Targets: >= 3,000 training samples/s,
<= 8 s for the 60,858 test samples.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from _common import data_root_or_exit

from graphrec import SRGNN
from graphrec.data import SessionLoader
from graphrec.datasets import load_benchmark
from graphrec.evaluation import evaluate


def train_rate(model, loader, steps: int, fused_loss: bool, fused_adam: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=fused_adam)
    it = loader.iter_from(0)

    def step() -> int:
        batch = next(it)
        opt.zero_grad(set_to_none=True)
        if fused_loss:
            loss = model.loss(batch)
        else:
            loss = F.cross_entropy(model.score(batch)[:, 1:], batch.y - 1)
        loss.backward()
        opt.step()
        return batch.num_sessions

    for _ in range(10):
        step()
    start = time.perf_counter()
    samples = sum(step() for _ in range(steps))
    return samples / (time.perf_counter() - start)


def matmul_floor(num_items: int, d: int = 100, b: int = 100, reps: int = 50) -> float:
    """Seconds per batch of the forward and the two backward full-softmax matmuls."""
    h, w = torch.randn(b, d), torch.randn(num_items + 1, d)
    g = torch.randn(b, num_items + 1)
    for _ in range(5):
        h @ w.t(), g @ w, g.t() @ h
    start = time.perf_counter()
    for _ in range(reps):
        h @ w.t(), g @ w, g.t() @ h
    return (time.perf_counter() - start) / reps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    root = data_root_or_exit()
    train = load_benchmark("diginetica", root=root, valid_fraction=0, cache=False)
    test = load_benchmark("diginetica", root=root, split="test", cache=False)
    loader = SessionLoader(train, batch_size=100, shuffle=True, seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rates = {}
    for name, fused_loss, fused_adam in [
        ("graphrec (fused loss, fused Adam)", True, True),
        ("unfused loss, fused Adam", False, True),
        ("unfused loss, default Adam", False, False),
    ]:
        torch.manual_seed(0)
        model = SRGNN(train.num_items)
        rates[name] = train_rate(model, loader, args.steps, fused_loss, fused_adam)
    base = rates["unfused loss, default Adam"]
    for name, rate in rates.items():
        print(f"train  {name:<36} {rate:7,.0f} samples/s  ({rate / base:.2f}x)")
    floor = matmul_floor(train.num_items)
    best = rates["graphrec (fused loss, fused Adam)"]
    print(
        f"floor  three full-softmax matmuls: {1000 * floor:.1f} ms/batch = {100 / floor:,.0f} "
        f"samples/s; graphrec step = {1000 * 100 / best:.1f} ms ({floor * best / 100:.0%} of it "
        "is the matmuls)"
    )
    torch.manual_seed(0)
    model = SRGNN(train.num_items).eval()
    evaluate(model, test)  # warm-up
    start = time.perf_counter()
    evaluate(model, test)
    print(f"eval   full ranking of {len(test):,} test samples: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
