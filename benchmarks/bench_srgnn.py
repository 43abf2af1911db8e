"""SR-GNN training throughput and full test evaluation time on Diginetica.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_srgnn.py [--steps 300]
        [--device cpu|cuda] [--rounds 5] [--profile] [--no-reuse-memory]

Exact model (full softmax over 43,097 items), batch 100, hidden 100, Adam. In the
same process, for ratios: the same step with the unfused loss (matmul +
F.cross_entropy) and torch's default (unfused) Adam, and the floor of a step: the
three full-softmax matmuls of a batch (logits, and the two gradients) plus one
fused Adam update of every parameter. The step and the floor are timed in
alternating rounds and compared by their medians (target: step <= 1.18x floor).
Beside them, the same three products blocked as graphrec's CPU loss computes
them (faster than the plain ones), and the page faults per call. As the
Trainer does, the script first makes malloc keep freed memory for reuse
(``--no-reuse-memory``: not).
``--profile`` prints torch.profiler's table of the graphrec step, by operator.
Targets: >= 3,000 training samples/s, <= 8 s for the 60,858 test samples.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F
from _common import data_root_or_exit, rounds, sync

from graphrec import SRGNN
from graphrec.data import SessionLoader
from graphrec.datasets import load_benchmark
from graphrec.evaluation import evaluate
from graphrec.memory import reuse_freed_memory, reusing_freed_memory
from graphrec.nn.functional import MM_BLOCK


def make_step(model, loader, fused_loss: bool, fused_adam: bool, device: torch.device):
    """A function running one training step (returns its number of samples)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5, fused=fused_adam)
    it = loader.iter_from(0)

    def step() -> int:
        batch = next(it).to(device)
        opt.zero_grad(set_to_none=True)
        if fused_loss:
            loss = model.loss(batch)
        else:
            loss = F.cross_entropy(model.score(batch)[:, 1:], batch.y - 1)
        loss.backward()
        opt.step()
        return batch.num_sessions

    return step


def train_rate(model, loader, steps: int, fused_loss: bool, fused_adam: bool, device=None) -> float:
    device = torch.device("cpu") if device is None else device
    step = make_step(model, loader, fused_loss, fused_adam, device)
    for _ in range(10):
        step()
    sync(device)
    start = time.perf_counter()
    samples = sum(step() for _ in range(steps))
    sync(device)
    return samples / (time.perf_counter() - start)


def make_floor(model, device: torch.device, b: int = 100, blocked: bool = False):
    """The floor of one step: the three full-softmax matmuls of a batch of ``b``
    and one fused Adam update of all of ``model``'s parameters. ``blocked``: the
    same products as graphrec's loss computes them: batched over blocks of
    ``MM_BLOCK`` items, on block-major operands, plus the tail."""
    w = model.item_embedding.weight.detach()
    n, d = w.shape
    blocks = n // MM_BLOCK
    full = blocks * MM_BLOCK
    h = torch.randn(b, d, device=device)
    g = torch.randn(b, n, device=device)
    q = torch.randn(blocks, b, MM_BLOCK, device=device)  # block-major probabilities
    tail = torch.randn(b, n - full, device=device)
    w_blocks = w[:full].view(blocks, MM_BLOCK, d)
    grad_w = torch.empty_like(w)
    params = [p.detach().clone().requires_grad_() for p in model.parameters()]
    for p in params:
        p.grad = torch.zeros_like(p)
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-5, fused=True)

    def floor() -> int:
        if blocked:
            torch.bmm(h.expand(blocks, b, d), w_blocks.transpose(1, 2)), h @ w[full:].t()
            torch.bmm(q, w_blocks).sum(0) + tail @ w[full:]
            grad_blocks = grad_w[:full].view_as(w_blocks)
            torch.bmm(q.transpose(1, 2), h.expand(blocks, b, d), out=grad_blocks)
            torch.mm(tail.t(), h, out=grad_w[full:])
        else:
            h @ w.t(), g @ w, g.t() @ h
        opt.step()
        return b

    return floor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--no-reuse-memory", action="store_true", help="leave malloc alone (the Trainer does not)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if not args.no_reuse_memory:  # as the Trainer does on a CPU
        reuse_freed_memory()
    root = data_root_or_exit()
    train = load_benchmark("diginetica", root=root, valid_fraction=0, cache=False)
    test = load_benchmark("diginetica", root=root, split="test", cache=False)
    loader = SessionLoader(train, batch_size=100, shuffle=True, seed=0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, "
        f"freed memory reused: {reusing_freed_memory()}"
    )
    rates = {}
    for name, fused_loss, fused_adam in [
        ("graphrec (fused loss, fused Adam)", True, True),
        ("unfused loss, fused Adam", False, True),
        ("unfused loss, default Adam", False, False),
    ]:
        torch.manual_seed(0)
        model = SRGNN(train.num_items).to(device)
        rates[name] = train_rate(model, loader, args.steps, fused_loss, fused_adam, device)
    base = rates["unfused loss, default Adam"]
    for name, rate in rates.items():
        print(f"train  {name:<36} {rate:7,.0f} samples/s  ({rate / base:.2f}x)")

    torch.manual_seed(0)
    model = SRGNN(train.num_items).to(device)
    step = make_step(model, loader, True, True, device)
    per_round = max(10, args.steps // args.rounds)
    fns = {
        "step": step,
        "floor": make_floor(model, device),
        "blocked": make_floor(model, device, blocked=True),
    }
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    med = rounds(fns, per_round, args.rounds, device)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / (
        (per_round * args.rounds + 5) * len(fns)
    )
    print(
        f"floor  three full-softmax matmuls + fused Adam: {1000 * med['floor']:.1f} ms/batch; "
        f"graphrec step {1000 * med['step']:.1f} ms = {med['step'] / med['floor']:.2f}x the floor "
        f"(medians of {args.rounds} alternating rounds of {per_round} steps)"
    )
    print(
        f"       the same products blocked, as graphrec's loss computes them: "
        f"{1000 * med['blocked']:.1f} ms = {med['blocked'] / med['floor']:.2f}x the floor; "
        f"step = {med['step'] / med['blocked']:.2f}x that; {faults:,.0f} page faults per call"
    )
    if args.profile:
        with torch.profiler.profile() as prof:
            for _ in range(50):
                step()
            sync(device)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))

    torch.manual_seed(0)
    model = SRGNN(train.num_items).to(device).eval()
    evaluate(model, test)  # warm-up
    sync(device)
    start = time.perf_counter()
    evaluate(model, test)
    sync(device)
    print(f"eval   full ranking of {len(test):,} test samples: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
