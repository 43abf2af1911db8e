"""Repeat consumption: SR-GNN (plain and repeat-aware), S-POP, the kNN methods and
two-stage SR-GNN -> DIN/DIEN as the share of repeated next clicks grows
(synthetic logs).

    python benchmarks/bench_repeat.py [--rates 0 0.2 0.4 0.6] [--sessions 20000]
        [--items 1000] [--mean-length 5] [--successor-share 0.6]
        [--epochs 3] [--patience 10] [--ranker-epochs N] [--negatives hard]
        [--no-rankers] [--rankers din,dien] [--recipes srgnn-niser-plus-repeat]
        [--retriever plain|repeat] [--session-features] [--threads 1] [--out runs/repeat]
    python benchmarks/bench_repeat.py --merge runs/r0 runs/r0.2 ... [--out runs/repeat]

``--mean-length 15 --successor-share 0.1 --items 5000 --sessions 4000`` is the
regime of long, repeat-heavy real sessions, where S-POP beats plain SR-GNN.

For every repeat rate a synthetic log is generated (``repeat_rate``: the
probability that a next click repeats an earlier click of its session). SR-GNN
is trained and selected on validation HR@20 (``--epochs``, ``--patience``); DIN
and DIEN are trained for a fixed number of epochs (``--ranker-epochs``;
``--negatives``: hard ones from SR-GNN's top-100, or uniform) and re-rank
SR-GNN's top-100: alone (``->``, ``TwoStage``'s ``fusion="none"``) and fused
with SR-GNN's scores (``x``, ``fusion="product"``). The table gives test HR@20 /
MRR@20 (%) and the measured share of test targets already in their session.
``--retriever repeat`` makes the repeat-aware SR-GNN the first stage (its negatives
and its candidates); ``--session-features`` adds each ranker trained with
``session_features=True`` (``+ in-session``): the head sees whether a candidate
is in the session, how often and how recently;
``results.json`` (and ``repeat.png`` when matplotlib is installed) go to ``--out``.
``--recipes`` adds named configurations of the registry (``srgnn-niser-repeat``,
``srgnn-niser-plus-repeat``, ...) as more first-stage columns, trained and
selected like the SR-GNN variants (the pipelines keep ``--retriever``'s model).
``--merge`` trains nothing: it joins the ``results.json`` of runs made one rate
per process (each with its own ``--out``) into one table, ``results.json`` and
plot in ``--out``; a rate found in two of them is refused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from graphrec.datasets import synthetic
from graphrec.evaluation import evaluate
from graphrec.models import RECIPES, SessionPopularity, TwoStage, build_model
from graphrec.models.knn import tune
from graphrec.training import Trainer


def repeat_share(data) -> float:
    """Share of samples whose target already occurs in the input session."""
    batch = data.batch(torch.arange(len(data)))
    hit = torch.zeros(len(data), dtype=torch.bool)
    clicks = batch.x[batch.alias]
    hit[batch.click_session()[clicks == batch.y[batch.click_session()]]] = True
    return float(hit.float().mean())


def run(rate: float, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    size = {"num_sessions": args.sessions, "num_items": args.items, "num_users": 500,
            "num_categories": 20, "repeat_rate": rate, "mean_length": args.mean_length,
            "successor_share": args.successor_share}  # fmt: skip
    train, valid, test = (synthetic(**size, split=s) for s in ("train", "valid", "test"))
    ks = (20,)
    common = {"progress": False, "ks": ks, "verbose": False}
    row = {}
    trained = {}
    variants = (("SR-GNN", {}), ("SR-GNN repeat", {"repeat": True}),
                ("SR-GNN repeat+mask", {"repeat": True, "mask_explore": True}))  # fmt: skip
    builds = [(label, "srgnn", extra) for label, extra in variants]
    builds += [(RECIPES[name].label, name, {}) for name in args.recipes]
    for label, name, extra in builds:
        torch.manual_seed(0)
        model = build_model(name, dataset=train, **extra)
        start = time.perf_counter()
        Trainer(model, train, valid, epochs=args.epochs, patience=args.patience,
                monitor="HR@20", **common).fit()  # fmt: skip
        trained[label] = model.eval()
        row[label] = evaluate(model, test, ks=ks)
        print(f"  {label}: {time.perf_counter() - start:.0f} s, test HR@20 "
              f"{100 * row[label]['HR@20']:.2f}", flush=True)  # fmt: skip
    srgnn = trained["SR-GNN repeat" if args.retriever == "repeat" else "SR-GNN"]
    first = "SR-GNN repeat" if args.retriever == "repeat" else "SR-GNN"
    row["S-POP"] = evaluate(SessionPopularity.from_dataset(train), test, ks=ks)
    for name in ("STAN", "VSTAN"):
        model, _ = tune(name, train, valid)
        row[name] = evaluate(model, test, ks=ks)
    rankers = () if args.no_rankers else args.rankers.split(",")
    flags = (False, True) if args.session_features else (False,)
    for name in rankers:
        for in_session in flags:
            torch.manual_seed(0)
            ranker = build_model(name, dataset=train, negative_sampling=args.negatives,
                                 session_features=in_session)  # fmt: skip
            ranker.set_retriever(srgnn)
            start = time.perf_counter()
            Trainer(ranker, train, None, epochs=args.ranker_epochs,
                    batch_size=128, lr=1e-3,
                    weight_decay=0.0, lr_gamma=1.0, **common).fit()  # fmt: skip
            seconds = time.perf_counter() - start
            ranker.eval()
            label = name.upper() + (" + in-session" if in_session else "")
            for fusion, arrow in (("none", "->"), ("product", "x")):
                pipeline = TwoStage(srgnn, ranker, k=100, fusion=fusion)
                row[f"{first} {arrow} {label}"] = evaluate(pipeline, test, ks=ks)
            print(f"  {label}: trained in {seconds:.0f} s", flush=True)
    row["repeat share"] = {"HR@20": repeat_share(test)}
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6])
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--mean-length", type=float, default=5.0)
    parser.add_argument("--successor-share", type=float, default=0.6)
    parser.add_argument("--no-rankers", action="store_true", help="no DIN/DIEN pipelines")
    parser.add_argument("--epochs", type=int, default=3, help="SR-GNN's epoch budget")
    parser.add_argument("--patience", type=int, default=10,
                        help="SR-GNN: epochs without a better validation HR@20")  # fmt: skip
    parser.add_argument("--ranker-epochs", type=int, default=None,
                        help="DIN/DIEN's epochs (no validation; default: --epochs)")  # fmt: skip
    parser.add_argument("--negatives", choices=["uniform", "popularity", "hard"], default="hard")
    parser.add_argument("--rankers", default="din,dien", help="the second stages")
    parser.add_argument("--retriever", choices=["plain", "repeat"], default="plain")
    parser.add_argument("--recipes", default="",
                        help="registry recipes as more columns, comma-separated")  # fmt: skip
    parser.add_argument(
        "--session-features", action="store_true", help="also each ranker with in-session features"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="runs/repeat")
    parser.add_argument("--merge", nargs="+", metavar="DIR",
                        help="join these runs' results.json (trains nothing)")  # fmt: skip
    args = parser.parse_args()
    args.ranker_epochs = args.ranker_epochs or args.epochs
    args.recipes = [name for name in args.recipes.split(",") if name]
    unknown = [name for name in args.recipes if name not in RECIPES]
    if unknown:
        parser.error(f"--recipes: unknown {unknown}; choose among {', '.join(RECIPES)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        results = merged(args.merge)
        budget = f"merged from {', '.join(args.merge)}"
    else:
        if args.threads:
            torch.set_num_threads(args.threads)
        results = {}
        for rate in args.rates:
            print(f"repeat rate {rate:.0%}", flush=True)
            results[rate] = run(rate, args)
            (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        budget = f"{args.epochs} epochs (patience {args.patience}), rankers {args.ranker_epochs}, "
        budget += f"{args.negatives} negatives"
    report(results, budget, out)


def merged(folders: list[str]) -> dict[float, dict[str, dict[str, float]]]:
    """The rates of several runs' ``results.json``, in increasing order."""
    results: dict[float, dict[str, dict[str, float]]] = {}
    seen: dict[float, str] = {}
    for folder in folders:
        path = Path(folder) / "results.json"
        if not path.is_file():
            raise SystemExit(f"--merge: {path} not found")
        for key, row in json.loads(path.read_text()).items():
            rate = float(key)
            if rate in seen:
                raise SystemExit(f"--merge: repeat rate {key} is in {seen[rate]} and {path}")
            seen[rate] = str(path)
            results[rate] = row
    results = dict(sorted(results.items()))
    models = [set(row) for row in results.values()]
    if any(m != models[0] for m in models):
        raise SystemExit("--merge: the runs do not have the same models (same options?)")
    return results


def report(results: dict[float, dict[str, dict[str, float]]], budget: str, out: Path) -> None:
    """Print the table, write ``results.json`` and the plot to ``out``."""
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    models = [m for m in next(iter(results.values())) if m != "repeat share"]
    print(f"\ntest HR@20 / MRR@20 (%), {budget}")
    width = {m: max(20, len(m) + 2) for m in models}
    print(f"{'rate':>6} {'repeats':>8} " + "".join(f"{m:>{width[m]}}" for m in models))
    for rate, row in results.items():
        cells = "".join(
            f"{100 * row[m]['HR@20']:>{width[m] - 8}.2f} / {100 * row[m]['MRR@20']:>5.2f}"
            for m in models
        )
        print(f"{rate:>6.0%} {100 * row['repeat share']['HR@20']:>7.1f}% {cells}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot)")
        return
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("HR@20", "MRR@20"), strict=True):
        for m in models:
            ax.plot([100 * r for r in results], [100 * results[r][m][metric] for r in results],
                    marker="o", label=m)  # fmt: skip
        ax.set_xlabel("repeat rate (%)")
        ax.set_ylabel(f"test {metric} (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "repeat.png", dpi=120)
    print(f"plot: {out / 'repeat.png'}")


if __name__ == "__main__":
    main()
