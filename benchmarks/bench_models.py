"""Training throughput and full test evaluation time of every model, beside SR-GNN.

    GRAPHREC_DATA=../shared/datasets python benchmarks/bench_models.py [--steps 150]
        [--datasets diginetica amazon-games] [--threads N]

Every model at batch 100 and hidden 100 (SDM: 2 heads), its exact default loss
(full softmax for SR-GNN, STAMP, SDM; AttRec's hinge with one sampled negative),
fused Adam, in one process, so the ratios to SR-GNN compare like with like. On Amazon
Games SDM reads a 10-item short-term window and a 50-item history (the setting
of the accuracy runs); the others a 50-item window. Targets: STAMP and AttRec
>= 1.5x SR-GNN's training throughput, SDM >= SR-GNN's.

The rankers (DIN, DIEN) train at batch 100 with their own defaults (embeddings
of 32, BCE against one uniform negative). A ranker scores every (session,
candidate) pair separately, so instead of a full test ranking it reports: the
test evaluation against 100 sampled negatives, the two-stage evaluation
``TwoStage(SR-GNN, ranker, k=100)`` over the full catalogue (the SR-GNN of
this run, untrained: only the time matters), and the cost of a full-catalogue
ranking per session, measured on a few batches.
"""

from __future__ import annotations

import argparse
import time

import torch
from _common import data_root_or_exit
from bench_srgnn import train_rate

from graphrec.data import SessionLoader
from graphrec.datasets import load_dataset
from graphrec.evaluation import evaluate
from graphrec.models import MODELS, TwoStage, build_model


def load(name: str, root, split: str, model: str):
    kwargs = {"root": root, "valid_fraction": 0}
    if name != "amazon-games":
        kwargs["cache"] = False
    if model == "sdm" and name == "amazon-games":
        kwargs.update(max_length=10, history_length=50)
    return load_dataset(name, split, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--datasets", nargs="+", default=["diginetica", "amazon-games"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root_or_exit()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 100, hidden 100")
    for name in args.datasets:
        rates, seconds, extra, retriever = {}, {}, {}, None
        for model_name in args.models:
            train = load(name, root, "train", model_name)
            test = load(name, root, "test", model_name)
            torch.manual_seed(0)
            kwargs = {"hidden_channels": 100} if MODELS[model_name].cheap_full_ranking else {}
            model = build_model(model_name, dataset=train, **kwargs)
            loader = SessionLoader(train, batch_size=100, shuffle=True, seed=0)
            rates[model_name] = train_rate(model, loader, args.steps, True, True)
            model.eval()
            start = time.perf_counter()
            if model.cheap_full_ranking:
                evaluate(model, test)
                seconds[model_name] = time.perf_counter() - start
                continue
            evaluate(model, test, negatives=100, full_ranking=False)
            sampled = time.perf_counter() - start
            if retriever is None:
                retriever = build_model("srgnn", dataset=train, hidden_channels=100).eval()
            start = time.perf_counter()
            evaluate(TwoStage(retriever, model, k=100), test)
            seconds[model_name] = time.perf_counter() - start
            extra[model_name] = (sampled, full_catalogue_cost(model, test))
        base = rates.get("srgnn")
        print(f"\n{name}: {len(test):,} test samples, {train.num_items:,} items")
        for model_name in args.models:
            ratio = f"({rates[model_name] / base:.2f}x SR-GNN)" if base else ""
            line = f"  {model_name:<7} train {rates[model_name]:8,.0f} samples/s {ratio:<17} "
            if model_name not in extra:
                print(line + f"full test evaluation {seconds[model_name]:6.2f} s")
                continue
            sampled, per_session = extra[model_name]
            print(
                line + f"100-negative test evaluation {sampled:6.2f} s, two-stage "
                f"(SR-GNN top-100) {seconds[model_name]:6.2f} s, full catalogue "
                f"{1000 * per_session:,.0f} ms/session "
                f"(whole test split: {per_session * len(test) / 3600:,.1f} h)"
            )


@torch.no_grad()
def full_catalogue_cost(model, data, batches: int = 2, batch_size: int = 100) -> float:
    """Seconds per session of a ranker's full-catalogue scoring (a few test batches)."""
    start = time.perf_counter()
    for b in range(batches):
        model.score(data.batch(torch.arange(b * batch_size, (b + 1) * batch_size)))
    return (time.perf_counter() - start) / (batches * batch_size)


if __name__ == "__main__":
    main()
