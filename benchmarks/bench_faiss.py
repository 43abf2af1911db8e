"""Approximate retrieval on trained embeddings: recall@K of the exact top-K, and time.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_faiss.py \\
        --checkpoint runs/srgnn-diginetica/best.pt --queries 5000 --threads 1

Queries are session embeddings of test samples of the checkpoint's dataset; the
exact top-K is torch's. Every index setting is timed against the exact search
in the same run (ratio < 1: the index is faster).
"""

from __future__ import annotations

import argparse
import time

import torch

from graphrec.datasets import load_dataset
from graphrec.evaluation import FaissRetriever
from graphrec.models import build_model
from graphrec.models.base import similarity
from graphrec.training import load_checkpoint, load_model


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--untrained",
        action="store_true",
        help="the checkpoint's model at its initialisation (the hardest case: no structure)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    model = load_model(args.checkpoint)
    state = load_checkpoint(args.checkpoint)
    info = state.get("run_info", {})
    if args.untrained:
        torch.manual_seed(0)
        model = build_model(state["model"], **state["model_config"]).eval()
    test = load_dataset(info["dataset"], "test", cache=False)
    index = torch.arange(min(args.queries, len(test)))
    with torch.no_grad():
        queries = model.session_embedding(test.batch(index))
        items = model.item_vectors()
    k = args.k

    def exact():
        return similarity(queries, items, model.metric)[:, 1:].topk(k, dim=1).indices + 1

    t_exact, truth = timed(exact)
    print(
        f"{type(model).__name__}{' (untrained)' if args.untrained else ''}, "
        f"{items.size(0) - 1} items, d={items.size(1)}, "
        f"{len(index)} queries, k={k}, {args.threads} thread(s)"
    )
    print(f"exact torch: {t_exact * 1e3:.0f} ms")
    settings = [
        ("hnsw", {"ef_search": 64, "mips": "raw"}),
        ("hnsw", {"ef_search": 128, "mips": "raw"}),
        ("hnsw", {"ef_search": 256, "mips": "raw"}),
        ("hnsw", {"ef_search": 128, "mips": "l2"}),
        ("hnsw", {"ef_search": 256, "mips": "l2"}),
        ("ivf", {"nprobe": 8}),
        ("ivf", {"nprobe": 16}),
        ("ivf", {"nprobe": 32}),
        ("ivf", {"nprobe": 64}),
        ("ivf", {"nprobe": 128}),
    ]
    print(f"{'index':<8}{'setting':<44}{'build s':>9}{'recall@' + str(k):>11}{'time / exact':>14}")
    for kind, kw in settings:
        kw = {**kw}
        start = time.perf_counter()
        try:
            retriever = FaissRetriever(items, kind=kind, metric=model.metric, **kw)
        except TypeError:  # an older FaissRetriever without these options
            continue
        build = time.perf_counter() - start
        t, (top, _) = timed(lambda r=retriever: r.search(queries, k))
        hits = (top.unsqueeze(2) == truth.unsqueeze(1)).any(dim=2).sum(dim=1)
        recall = float(hits.double().mean() / k)
        setting = ", ".join(f"{a}={b}" for a, b in kw.items())
        print(f"{kind:<8}{setting:<44}{build:>9.1f}{recall:>11.4f}{t / t_exact:>13.2f}x")


if __name__ == "__main__":
    main()
