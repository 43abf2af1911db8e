"""Full-ranking evaluation time of every retrieval model against its matmul floor.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_eval.py
        [--models srgnn stamp attrec sdm] [--repeats 3] [--device cpu|cuda]

Full-ranking evaluation of the 60,858 Diginetica test samples scores each chunk
of ``--batch-size`` sessions against the whole catalogue (``[B x d] @ [d x N]``)
and ranks the target. Its floor is that matmul alone, chunk by chunk, with the
same shapes. For every retrieval model this prints, in one process: the
evaluation time, the floor, their ratio (target <= 1.3), and the parts: the
session embeddings alone and the ranking (top-K + rank of the target) of
ready-made score blocks. Each figure is the median of ``--repeats`` rounds
taken in turn (evaluation, floor, evaluation, floor, ...), so that a busy
machine slows both sides alike. Untrained models: the cost does not depend
on the weights.
"""

from __future__ import annotations

import argparse

import torch
from _common import data_root_or_exit, rounds, sync

from graphrec.datasets import load_benchmark
from graphrec.evaluation import Evaluator, evaluate
from graphrec.evaluation.evaluate import EMBED_BLOCK, _score_buffers, by_length
from graphrec.models import build_model, similarity
from graphrec.nn.functional import mm_nt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["srgnn", "stamp", "attrec", "sdm"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    root = data_root_or_exit()
    test = load_benchmark("diginetica", root=root, split="test", cache=False)
    n, b = len(test), args.batch_size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}")
    print(f"{n:,} test samples, {test.num_items:,} items, chunks of {b}\n")
    header = (
        f"{'model':<8}{'eval s':>9}{'floor s':>9}{'ratio':>7}"
        f"{'blocked s':>11}{'ratio':>7}{'embed s':>9}{'rank s':>8}"
    )
    print(header)
    for name in args.models:
        med = measure(name, test, b, args.repeats, device)
        print(
            f"{name:<8}{med['eval']:9.2f}{med['floor']:9.2f}{med['eval'] / med['floor']:7.2f}"
            f"{med['blocked']:11.2f}{med['eval'] / med['blocked']:7.2f}"
            f"{med['embed']:9.2f}{med['rank']:8.2f}"
        )


def measure(name: str, test, b: int, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of the evaluation, its floor and its two parts."""
    n = len(test)
    torch.manual_seed(0)
    model = build_model(name, dataset=test).to(device).eval()
    items = model.item_vectors().detach()
    queries = torch.randn(b, items.size(1), device=device)
    blocks = [torch.arange(s, min(s + b, n)) for s in range(0, n, b)]

    def run_eval() -> None:
        evaluate(model, test, batch_size=b)
        sync(device)

    @torch.no_grad()
    def run_floor() -> None:
        for index in blocks:
            queries[: index.numel()] @ items.t()
        sync(device)

    out, workspace = _score_buffers(b, items)

    @torch.no_grad()
    def run_blocked() -> None:  # the same products, as evaluate computes them (mm_nt)
        for index in blocks:
            mm_nt(queries[: index.numel()], items, out=out[: index.numel()], workspace=workspace)
        sync(device)

    order = by_length(test, torch.arange(n))  # the evaluator's order

    @torch.no_grad()
    def run_embed() -> None:
        for start in range(0, n, EMBED_BLOCK):
            batch = test.batch(order[start : start + EMBED_BLOCK])
            model.session_embedding(batch.to(device))
        sync(device)

    scores = similarity(queries, items, model.metric)
    target = torch.randint(1, test.num_items + 1, (b,), device=device)

    def run_rank() -> None:
        ev = Evaluator((5, 10, 20), num_items=test.num_items)
        for _ in blocks:
            ev.update(scores, target)
        sync(device)

    fns = {"eval": run_eval, "floor": run_floor, "blocked": run_blocked}
    med = rounds(fns, 1, repeats, device, warmup=1)
    return med | rounds({"embed": run_embed, "rank": run_rank}, 1, 1, device, warmup=0)


if __name__ == "__main__":
    main()
