"""Compare models on one dataset: train each over seeds, select on validation, test.

``graphrec benchmark`` is a thin wrapper around :func:`run_benchmark`. Every
model is trained with its registry defaults (:data:`graphrec.models.TRAINING_DEFAULTS`, the
hyper-parameters of its paper or of its authors' code), selected on the
validation split, then tested once. Popularity and S-POP come beside them.
The kNN baselines (SKNN, V-SKNN, STAN, VSTAN, arguments chosen on validation)
come too. Results land in ``out_dir`` as ``results.json`` (every seed and the summary),
``results.csv`` and ``results.md`` (mean ± standard deviation over seeds).

With ``refit=True`` every model/seed is also trained again on the whole
training file (training and validation split together, as the papers train)
for the number of epochs that validation chose, and tested once more; its row
is the model's name followed by ``refit`` (``"srgnn refit"``, shown as
``SRGNN, refit``). The epoch count is the only thing carried over, so the
refit row is selected on validation too, and it never replaces the row of the
run that validation selected.

A benchmark resumes: a model/seed whose ``result.json`` exists is read back,
not retrained, and one interrupted mid-training continues from its
``last.pt`` (exactly, as ``graphrec train --resume``), so an interrupted
comparison continues where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from graphrec.datasets import load_dataset
from graphrec.datasets.registry import dataset_label, is_sequential
from graphrec.evaluation import evaluate
from graphrec.models import (
    Popularity,
    SessionPopularity,
    build_model,
    model_names,
    training_defaults,
)
from graphrec.models.knn import KNN_METHODS, tune
from graphrec.models.registry import display_name, resolve
from graphrec.training import Trainer

log = logging.getLogger("graphrec.benchmark")

#: Data options that differ per model on user-sequential data (SDM's short-term
#: window and long-term history, as in its paper and the Amazon tutorial).
SEQUENTIAL_DATA = {"sdm": {"max_length": 10, "history_length": 50}}
#: rows that are not trained over seeds: counted or fitted, one run
BASELINES = ("POP", "S-POP", *KNN_METHODS)
#: Test negatives: every model, retrieval ones included, is also ranked against
#: the same 100 sampled negatives, so rankers (DIN, DIEN) have a row.
NEGATIVES = 100
# steps between the checkpoints taken within an epoch (an epoch of a full
# dataset takes many minutes; a killed benchmark loses at most this many steps)
CHECKPOINT_EVERY = 1000
#: the suffix of a refit row's name (``"srgnn refit"``)
REFIT = " refit"


def row_label(name: str) -> str:
    """How a row is shown: ``SRGNN``, ``SRGNN + NISER``, ``SRGNN, refit``, ``POP``."""
    if name.endswith(REFIT):
        return f"{display_name(name.removesuffix(REFIT))}, refit"
    return display_name(name)


def default_monitor(model: str, dataset: str, negatives: int = NEGATIVES) -> str:
    """The validation metric a model is selected on in a benchmark."""
    monitor = training_defaults(model).get("monitor")
    if monitor is not None:
        return monitor.replace(f"({NEGATIVES} neg.)", f"({negatives} neg.)")
    return "NDCG@10" if is_sequential(dataset) else "HR@20"


def default_columns(dataset: str, negatives: int = NEGATIVES) -> list[str]:
    """The metrics a benchmark table shows for a dataset."""
    if is_sequential(dataset):
        return [
            "HR@10",
            "NDCG@10",
            f"HR@10 ({negatives} neg.)",
            f"NDCG@10 ({negatives} neg.)",
            f"AUC ({negatives} neg.)",
        ]
    return ["HR@20", "MRR@20", "NDCG@20", f"AUC ({negatives} neg.)"]


def _data_options(model: str, dataset: str, max_length, history_length) -> dict[str, Any]:
    options: dict[str, Any] = {"max_length": max_length, "history_length": history_length}
    if is_sequential(dataset) and max_length is None and not history_length:
        options.update(SEQUENTIAL_DATA.get(resolve(model)[0], {}))
    return options


def run_benchmark(
    models: Sequence[str],
    dataset: str,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike | None = None,
    root: str | os.PathLike | None = None,
    epochs: int | None = None,
    max_steps: int | None = None,
    patience: int = 10,
    max_length: int | None = None,
    history_length: int = 0,
    cache: bool = True,
    device: str | None = None,
    progress: bool = False,
    train: bool = True,
    negatives: int = NEGATIVES,
    num_threads: int | str | None = None,
    reuse_memory: bool = True,
    knn: bool = True,
    refit: bool = False,
) -> dict[str, Any]:
    """Train and test ``models`` over ``seeds`` on ``dataset``; write the tables.

    Args:
        models: registry names (``"srgnn"``, ``"stamp"``, ...), or recipes
            (``"srgnn-niser-repeat"``, :data:`graphrec.models.RECIPES`).
        dataset (str): a dataset name or a processed folder (see
            :func:`graphrec.datasets.load_dataset`).
        seeds: one training run per seed and model. (default: ``(0,)``)
        out_dir (str, optional): where runs and tables go (default:
            ``runs/benchmark/<dataset>``, beside ``graphrec train``'s runs and,
            like them, ignored by git).
        root (str, optional): the data root.
        epochs (int, optional): an epoch budget for every model (default:
            each model's own, 30 unless its registry entry says otherwise).
        max_steps (int, optional): cap the steps of every epoch (a smoke run).
        patience (int): early stopping on validation. (default: ``10``)
        max_length (int, optional): the short-term window of every model
            (default: whole prefixes; on user-sequential data, SDM reads 10
            clicks and every other model 50).
        history_length (int): the long-term history (default: none; on
            user-sequential data, 50 items for SDM).
        cache (bool): cache processed graphs (benchmarks). (default: ``True``)
        device (str, optional): e.g. ``"cuda"``.
        progress (bool): show progress bars. (default: ``False``)
        negatives (int): every model is also ranked against this many
            sampled negatives on test (the same for all), so that rankers
            have a row. (default: ``100``)
        num_threads (int or str, optional): CPU threads of every training
            (``"auto"``: see :mod:`graphrec.threads`; ``None``: torch's).
        reuse_memory (bool): see :class:`~graphrec.training.Trainer`. (default: ``True``)
        train (bool): ``False`` only reads back finished runs and writes the
            tables from them (runs not yet done are left out and listed).
            (default: ``True``)
        knn (bool): also the kNN baselines SKNN, V-SKNN, STAN and VSTAN, their
            arguments chosen on the validation split
            (:func:`graphrec.models.knn.tune`; read back from
            ``knn-<name>.json`` once done). (default: ``True``)
        refit (bool): also retrain every model/seed on the training and
            validation splits together, for the epochs validation chose, and
            test it: the row ``"<model> refit"``, from ``<run>/refit/``.
            Resumed like the runs. (default: ``False``)

    Returns:
        The content of ``results.json``: ``runs`` (every model and seed),
        ``summary`` (mean and standard deviation per model and metric) and
        ``columns``.
    """
    unknown = [m for m in models if m not in model_names()]
    if unknown:
        raise ValueError(
            f"--models: unknown model(s) {unknown}; choose from {', '.join(model_names())}"
        )
    if not models or not seeds:
        raise ValueError("a benchmark needs at least one model and one seed")
    label = dataset_label(dataset)
    out = Path(out_dir) if out_dir is not None else Path("runs/benchmark") / label
    out.mkdir(parents=True, exist_ok=True)
    loaded: dict[tuple, dict[str, Any]] = {}

    def splits(options: dict[str, Any]) -> dict[str, Any]:
        key = tuple(sorted(options.items()))
        if key not in loaded:
            kwargs = {"root": root, **options}
            if dataset != "synthetic":
                kwargs["cache"] = cache
            loaded[key] = {
                s: load_dataset(dataset, s, **kwargs) for s in ("train", "valid", "test")
            }
        return loaded[key]

    def whole_train(options: dict[str, Any]) -> dict[str, Any]:
        """The training file without a validation split (and the same test)."""
        key = (*sorted(options.items()), ("valid_fraction", 0))
        if key not in loaded:
            kwargs = {"root": root, **options, "valid_fraction": 0}
            if dataset != "synthetic":
                kwargs["cache"] = cache
            loaded[key] = {
                "train": load_dataset(dataset, "train", **kwargs),
                "valid": None,
                "test": splits(options)["test"],
            }
        return loaded[key]

    def one_run(name, options, seed, run_dir, data, run_epochs, missing, **extra):
        """A finished run read back, else trained and tested (``None``: not to train)."""
        done = run_dir / "result.json"
        if done.is_file():
            log.info("%s seed %d: read back from %s", name, seed, done)
            return json.loads(done.read_text())
        if not train:
            print(f"{name} seed {seed}: {missing} ({done} missing), left out", flush=True)
            return None
        record = _train_and_test(
            name, data(options), seed, run_dir, label, options,
            epochs=run_epochs, max_steps=max_steps, patience=patience,
            monitor=default_monitor(name, dataset, negatives), device=device,
            progress=progress, negatives=negatives, num_threads=num_threads,
            reuse_memory=reuse_memory,
        )  # fmt: skip
        record.update(extra)
        done.write_text(json.dumps(record, indent=2) + "\n")
        return record

    runs: dict[str, list[dict[str, Any]]] = {}
    for name in models:
        options = _data_options(name, dataset, max_length, history_length)
        for seed in seeds:
            run_dir = out / f"{name}-s{seed}"
            record = one_run(name, options, seed, run_dir, splits, epochs, "not run yet")
            if record is None:
                continue
            runs.setdefault(name, []).append(record)
            print(_one_line(name, seed, record), flush=True)
            if not refit:
                continue
            # the same model trained again on train + valid, for the epochs validation chose
            again = one_run(
                name, options, seed, run_dir / "refit", whole_train, record["best_epoch"],
                "not refit yet", refit_of=run_dir.name,
            )  # fmt: skip
            if again is not None:
                runs.setdefault(name + REFIT, []).append(again)
                print(_one_line(name + REFIT, seed, again), flush=True)
    base = splits(_data_options("srgnn", dataset, max_length, history_length))
    if knn:
        runs.update(_knn_runs(base, out, dataset, negatives))
    train_split = base["train"]
    for name, model in (
        ("S-POP", SessionPopularity.from_dataset(train_split)),
        ("POP", Popularity.from_dataset(train_split)),
    ):
        start = time.perf_counter()
        metrics = evaluate(model, base["test"], ks=(5, 10, 20), negatives=negatives)
        runs[name] = [{"seed": None, "metrics": metrics, "eval_seconds": _since(start)}]
    summary = {name: summarise(records) for name, records in runs.items() if records}
    result = {
        "dataset": label,
        "seeds": list(seeds),
        "epochs": epochs,
        "max_steps": max_steps,
        "samples": {s: len(base[s]) for s in ("train", "valid", "test")},
        "num_items": base["train"].num_items,
        "negatives": negatives,
        "columns": default_columns(dataset, negatives),
        "runs": runs,
        "summary": summary,
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "results.csv").write_text(results_csv(result))
    (out / "results.md").write_text(results_markdown(result))
    return result


def _knn_runs(base: dict, out: Path, dataset: str, negatives: int) -> dict[str, list]:
    """The kNN baselines, arguments chosen on validation (read back when done)."""
    runs: dict[str, list] = {}
    if base["train"].sessions is None:
        log.info("kNN baselines left out: the training split keeps no sessions")
        return runs
    metric = "NDCG@10" if is_sequential(dataset) else "HR@20"
    for name in KNN_METHODS:
        done = out / f"knn-{name}.json"
        if done.is_file():
            record = json.loads(done.read_text())
        else:
            start = time.perf_counter()
            model, info = tune(name, base["train"], base["valid"], metric=metric)
            tuned = _since(start)
            start = time.perf_counter()
            metrics = evaluate(model, base["test"], ks=(5, 10, 20), negatives=negatives)
            record = {"seed": None, "metrics": metrics, "hparams": info["arguments"],
                      "monitor": metric, "valid": info["valid"], "tune_seconds": tuned,
                      "eval_seconds": _since(start)}  # fmt: skip
            done.write_text(json.dumps(record, indent=2) + "\n")
        runs[name] = [record]
        shown = ", ".join(f"{k}={v}" for k, v in record["hparams"].items())
        value = 100 * record["metrics"][metric]
        print(f"{name} ({shown}, chosen on validation {metric}): test {metric} {value:.2f}",
              flush=True)  # fmt: skip
    return runs


def _since(start: float) -> float:
    return time.perf_counter() - start


def _train_and_test(
    name: str,
    data: dict[str, Any],
    seed: int,
    run_dir: Path,
    label: str,
    options: dict[str, Any],
    *,
    epochs: int | None,
    max_steps: int | None,
    patience: int,
    monitor: str,
    device: str | None,
    progress: bool,
    negatives: int,
    num_threads: int | str | None,
    reuse_memory: bool = True,
) -> dict[str, Any]:
    hp = {"epochs": 30, **training_defaults(name)}
    hp.pop("monitor", None)
    if epochs is not None:
        hp["epochs"] = epochs
    torch.manual_seed(seed)
    model = build_model(name, dataset=data["train"])
    # an interrupted benchmark continues each run where it stopped (exactly); a
    # run of its own stopped before its first checkpoint has nothing to continue
    # and starts again (this folder is the benchmark's, named after model and seed)
    resume = (run_dir / "last.pt").is_file()
    trainer = Trainer(
        model,
        data["train"],
        data["valid"],
        monitor=monitor,
        negatives=negatives if monitor.endswith(" neg.)") else None,
        patience=patience,
        run_dir=run_dir,
        overwrite=not resume,
        checkpoint_every=CHECKPOINT_EVERY,
        seed=seed,
        max_steps_per_epoch=max_steps,
        progress=progress,
        run_info={
            "dataset": label,
            "valid_fraction": 0 if data["valid"] is None else 0.1,
            **options,
        },
        device=device,
        num_threads=num_threads,
        reuse_memory=reuse_memory,
        **hp,
    )
    result = trainer.fit(resume=resume)
    history = result.history
    start = time.perf_counter()
    metrics = evaluate(
        model,
        data["test"],
        ks=(5, 10, 20),
        negatives=negatives,
        full_ranking=model.cheap_full_ranking,
    )
    return {
        "seed": seed,
        "metrics": metrics,
        "best_epoch": result.best_epoch,
        "epochs_run": len(history),
        "train_seconds": sum(r["train_seconds"] for r in history),
        "valid_seconds": sum(r.get("valid_seconds", 0.0) for r in history),
        "samples_per_s": statistics.fmean(r["samples_per_s"] for r in history),
        "eval_seconds": _since(start),
        "parameters": sum(p.numel() for p in model.parameters()),
        "monitor": monitor,
        "hparams": hp,
        "data": options,
    }


def _one_line(name: str, seed: int, record: dict[str, Any]) -> str:
    shown = ", ".join(
        f"{k} {100 * v:.2f}"
        for k, v in record["metrics"].items()
        if k in ("HR@20", "MRR@20", "NDCG@10") or k.startswith("AUC (")
    )
    return (
        f"{name} seed {seed}: epoch {record['best_epoch']}/{record['epochs_run']}, "
        f"{record['train_seconds']:.0f} s training; test {shown}"
    )


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (``None`` with one run) of every number."""
    out: dict[str, Any] = {"runs": len(records), "metrics": {}}
    for metric in records[0]["metrics"]:
        values = [r["metrics"][metric] for r in records if metric in r["metrics"]]
        out["metrics"][metric] = _mean_std(values)
    for key in ("train_seconds", "samples_per_s", "best_epoch", "epochs_run"):
        values = [r[key] for r in records if r.get(key) is not None]
        if values:
            out[key] = _mean_std(values)
    return out


def _mean_std(values: list[float]) -> dict[str, float | None]:
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": mean, "std": std}


def _cell(stat: dict[str, Any] | None, scale: float = 100.0, digits: int = 2) -> str:
    if stat is None or stat["mean"] is None or not math.isfinite(stat["mean"]):
        return "–"
    text = f"{scale * stat['mean']:.{digits}f}"
    if stat["std"] is not None:
        text += f" ± {scale * stat['std']:.{digits}f}"
    return text


def results_markdown(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table (metrics in %, mean ± std over seeds)."""
    columns = result["columns"]
    head = ["model", "seeds", *columns, "epochs (best/run)", "train time (s)", "samples/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in result["summary"].items():
        shown = row_label(name)  # SRGNN, AttRec, SRGNN + NISER, SRGNN, refit, ...
        cells = [shown, "–" if name in BASELINES else str(s["runs"])]
        cells += [_cell(s["metrics"].get(c)) for c in columns]
        if "best_epoch" in s:
            cells.append(f"{s['best_epoch']['mean']:.1f} / {s['epochs_run']['mean']:.1f}")
            cells.append(_cell(s["train_seconds"], scale=1, digits=0))
            cells.append(_cell(s["samples_per_s"], scale=1, digits=0))
        else:
            cells += ["–", "–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def results_csv(result: dict[str, Any]) -> str:
    """One row per model: ``<metric>_mean`` and ``<metric>_std`` (fractions, not %)."""
    metrics: list[str] = []
    for s in result["summary"].values():
        metrics += [m for m in s["metrics"] if m not in metrics]
    extra = ["train_seconds", "samples_per_s", "best_epoch", "epochs_run"]
    header = ["model", "runs"]
    for key in (*metrics, *extra):
        header += [f"{key}_mean", f"{key}_std"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for name, s in result["summary"].items():
        row: list[Any] = [name, s["runs"]]
        for key in (*metrics, *extra):
            stat = s["metrics"].get(key) if key in metrics else s.get(key)
            row += (
                ["", ""]
                if stat is None
                else [stat["mean"], "" if stat["std"] is None else stat["std"]]
            )
        writer.writerow(row)
    return buffer.getvalue()
