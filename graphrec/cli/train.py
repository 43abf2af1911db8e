"""``graphrec train`` and ``graphrec demo``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from pathlib import Path

import torch

from graphrec.cli import common
from graphrec.cli.tables import baselines, pipeline, test_metrics
from graphrec.datasets import dataset_label, load_dataset
from graphrec.distributed import (
    init_distributed,
    is_main_process,
    launched_by_torchrun,
    local_leader_first,
)
from graphrec.evaluation import format_table
from graphrec.models import (
    RankingRecommender,
    TwoStage,
    build_model,
    model_arguments,
    model_names,
    training_defaults,
)
from graphrec.models.registry import FIELD_GROUPS, RECIPES, model_class, resolve
from graphrec.training import Trainer, load_model
from graphrec.training.run_dir import RunLock, describe_run, prepare_run_dir

log = logging.getLogger("graphrec")

DEMO_EPOCHS = 5
#: the cut-offs of the validation metrics (the trainer's default)
VALID_KS = (5, 10, 20)
DEMO_RUN_DIR = "runs/srgnn-synthetic"


def parse_value(text: str):
    """A ``--model-arg`` value: a tuple (commas), None, a bool, a number, or text."""
    if "," in text:  # a tuple, e.g. mlp_hidden=80,40
        return tuple(parse_value(t) for t in text.split(",") if t.strip())
    lowered = text.lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def model_kwargs(args: argparse.Namespace) -> dict:
    accepted = model_arguments(args.model)
    kwargs = {}
    if args.hidden is not None:
        kwargs["hidden_channels"] = args.hidden
    if args.layers is not None:
        if "num_layers" not in accepted:
            raise ValueError(f"--layers: {args.model} takes no num_layers")
        kwargs["num_layers"] = args.layers
    for item in args.model_arg or []:
        key, sep, value = item.partition("=")
        if not sep or key not in accepted:
            raise ValueError(
                f"--model-arg {item!r}: expected NAME=VALUE with NAME one of {sorted(accepted)}"
            )
        kwargs[key] = parse_value(value)
    return kwargs


def resolve_training(args: argparse.Namespace) -> None:
    """Flags left unset take the model's training defaults (the registry's)."""
    defaults = {"epochs": 30, "monitor": "HR@20", **training_defaults(args.model)}
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def new_model(args: argparse.Namespace, data, retriever=None):
    torch.manual_seed(args.seed)
    try:
        model = build_model(args.model, dataset=data, **model_kwargs(args))
    except TypeError as e:  # a --model-arg of the wrong type, named by the model's check
        raise ValueError(f"{args.model}: {e}") from None
    if isinstance(model, RankingRecommender):
        model.set_retriever(retriever)
    elif retriever is not None:
        raise ValueError(f"--retriever: {args.model} is not a ranker (din, dien)")
    return model


def fit(
    args: argparse.Namespace, model, train, valid, run_dir: Path, epochs: int, info: dict,
    retriever=None, resume: bool = False, overwrite: bool = False,
):  # fmt: skip
    valid_model = None
    if retriever is not None and not args.monitor.endswith(" neg.)"):
        # a full-ranking monitor with a retriever: select on the pipeline's metric
        valid_model = TwoStage(retriever, model, k=args.k)
        log.info("selecting on the validation %s of %r", args.monitor, valid_model)
    trainer = Trainer(
        model,
        train,
        valid,
        epochs=epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        clip_grad_norm=args.clip_grad_norm,
        lr_step=args.lr_step,
        lr_gamma=args.lr_gamma,
        patience=args.patience,
        monitor=args.monitor,
        negatives=common.negatives(args, args.dataset) if args.monitor.endswith("neg.)") else None,
        run_dir=run_dir,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        max_steps_per_epoch=args.max_steps,
        progress=not args.no_progress,
        run_info=info,
        device=args.device,
        valid_model=valid_model,
        num_threads=args.threads,
        reuse_memory=not args.no_reuse_memory,
        overwrite=overwrite,
    )
    return trainer.fit(resume=resume)


_MONITOR = re.compile(
    r"(?:(?:HR|MRR|NDCG|Coverage)@[1-9][0-9]*|AUC|GAUC)(?: \([1-9][0-9]* neg\.\))?"
)


def check_arguments(args: argparse.Namespace) -> None:
    """What argparse's types cannot check alone, before any data is read."""
    if args.monitor is not None and not _MONITOR.fullmatch(args.monitor):
        raise ValueError(
            f"--monitor {args.monitor!r}: expected a metric such as HR@20, MRR@20, NDCG@10, "
            '"HR@10 (100 neg.)" or "AUC (100 neg.)"'
        )
    cut = re.search(r"@([0-9]+)", args.monitor or "")
    if cut and int(cut.group(1)) not in VALID_KS:
        raise ValueError(f"--monitor {args.monitor!r}: validation computes the cut-offs {VALID_KS}")
    if args.resume and args.overwrite:
        raise ValueError(
            "--resume continues the run in --run-dir, --overwrite replaces it: pass one"
        )
    if args.refit and args.valid_fraction == 0:
        raise ValueError(
            "--refit retrains for the epochs chosen on validation: --valid-fraction > 0"
        )
    if args.retriever is not None and not issubclass(model_class(args.model), RankingRecommender):
        raise ValueError(f"--retriever: {args.model} is not a ranker (din, dien)")
    kwargs = model_kwargs(args)  # unknown --model-arg names fail here
    # field names (item_fields=genre,year) are checked against the data when it is read
    base, preset = resolve(args.model)
    stand_in = {k: v for k, v in {**preset, **kwargs}.items() if k not in FIELD_GROUPS}
    try:  # and values of the wrong type or range, on a two-item stand-in
        model_class(base)(num_items=2, **stand_in)
    except (TypeError, ValueError) as e:
        given = " ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ValueError(f"{args.model}({given}): {e}") from None


def train(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    check_arguments(args)
    if getattr(args, "distributed", False) or launched_by_torchrun():
        if not init_distributed(args.device):
            raise ValueError(
                "--distributed: launch with torchrun, e.g. "
                "torchrun --nproc-per-node 2 --no-python graphrec train ... --distributed"
            )
        if not is_main_process():  # rank 0 prints and writes; the others compute
            sys.stdout = open(os.devnull, "w")
    resolve_training(args)
    label = dataset_label(args.dataset)
    run_dir = Path(args.run_dir or f"runs/{args.model}-{label}")
    args.resume_hint = common.resume_command(run_dir)
    if not is_main_process():
        return _train(args, run_dir, label)
    # refused (or locked) before any data is read: a run is never lost to a typo,
    # and two commands never write into one folder
    with RunLock(run_dir):
        prepare_run_dir(run_dir, resume=args.resume, overwrite=args.overwrite)
        return _train(args, run_dir, label)


def _train(args: argparse.Namespace, run_dir: Path, label: str) -> dict[str, dict[str, float]]:
    kwargs = common.data_kwargs(args)
    with local_leader_first():  # one process per machine builds the processed files
        train = load_dataset(args.dataset, "train", **kwargs)
        valid = load_dataset(args.dataset, "valid", **kwargs) if args.valid_fraction > 0 else None
        test = load_dataset(args.dataset, "test", **kwargs)
    print(
        f"{label}: {len(train)} train / {len(valid) if valid else 0} valid / "
        f"{len(test)} test samples, {train.num_items} items"
    )
    retriever = common.load_retriever(args, train)
    model = new_model(args, train, retriever)
    negatives = common.eval_negatives(args, args.dataset, model)
    print(model)
    info = {"dataset": args.dataset, **{k: v for k, v in kwargs.items() if k != "root"}}
    start = time.perf_counter()
    result = fit(args, model, train, valid, run_dir, args.epochs, info, retriever, args.resume)
    print(f"trained in {time.perf_counter() - start:.0f} s; selected epoch {result.best_epoch}")
    name = type(model).__name__
    table = {f"{name} (epoch {result.best_epoch})": test_metrics(args, model, test, negatives)}
    if args.refit and valid is not None:
        # The epoch count was chosen on validation; retrain on the whole training file.
        full = load_dataset(args.dataset, "train", **{**kwargs, "valid_fraction": 0})
        refit = new_model(args, full, retriever)
        info = {**info, "valid_fraction": 0, "refit_of": str(run_dir)}
        refit_dir = run_dir / "refit"
        # part of this run: continued with it, else (a stale one) replaced
        again = args.resume and (refit_dir / "last.pt").is_file()
        fit(args, refit, full, None, refit_dir, result.best_epoch, info,
            resume=again, overwrite=not again)  # fmt: skip
        table[f"{name} refit, 100% train, {result.best_epoch} ep."] = test_metrics(
            args, refit, test, negatives
        )
        model = refit
    if retriever is not None:
        table.update(pipeline(args, retriever, model, test, negatives))
    table.update(baselines(train, test, (5, 10, 20), negatives, knn=False))
    if is_main_process():
        (run_dir / "test_metrics.json").write_text(json.dumps(table, indent=2) + "\n")
    print(f"\ntest split, {len(test)} samples (%):")
    print(format_table(table))
    print(f"\ncheckpoints and logs in {run_dir}/")
    return table


def cmd_train(args: argparse.Namespace) -> None:
    train(args)


def cmd_demo(args: argparse.Namespace) -> None:
    print("graphrec demo: SR-GNN on the embedded synthetic click log\n")
    if args.run_dir is None:
        args.run_dir = DEMO_RUN_DIR
        if not args.resume and describe_run(args.run_dir):
            print(f"replacing the previous demo run in {args.run_dir}/")
            args.overwrite = True
    train(args)
    model = load_model(Path(args.run_dir) / "best.pt")
    session = [3, 17, 3]
    top = model.recommend([session], k=10)[0].tolist()
    print(f"\nrecommend({session}, k=10) -> {top}")


def add_train_arguments(
    p: argparse.ArgumentParser,
    epochs_help: str | None = None,
    run_dir_help: str = "default: runs/<model>-<dataset>",
) -> None:
    p.add_argument(
        "--epochs",
        type=common.positive_int,
        default=None,
        help=epochs_help or "default: the model's (30)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default=None, help=run_dir_help)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run that --run-dir holds (its checkpoints and logs are deleted)",
    )
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar (the epoch lines stay)"
    )
    p.add_argument(
        "--model",
        default="srgnn",
        choices=model_names(),
        help="a model, or a recipe: a model with named arguments ("
        + ", ".join(
            f"{k}: {r.model} " + " ".join(f"{a}={v}" for a, v in r.arguments.items())
            for k, r in RECIPES.items()
        )
        + "); --model-arg comes on top",
    )
    p.add_argument(
        "--model-arg",
        action="append",
        metavar="NAME=VALUE",
        help="a constructor argument of the model, e.g. variant=code (repeatable); "
        "side fields: every field of the data by default, item_fields=genre,year to choose, "
        "item_fields=none (or user_fields=, context_fields=) to switch them off",
    )
    p.add_argument("--dataset", default="diginetica", help=common.DATASET_HELP)
    p.add_argument("--root", default=None, help="data root (default: $GRAPHREC_DATA or ./datasets)")
    p.add_argument("--no-cache", action="store_true", help="do not cache processed graphs")
    p.add_argument(
        "--batch-size", type=common.positive_int, default=None, help="default: the model's"
    )
    p.add_argument(
        "--hidden", type=common.positive_int, default=None, help="hidden_channels (model default)"
    )
    p.add_argument(
        "--layers", type=common.positive_int, default=None, help="num_layers (model default)"
    )
    p.add_argument("--optimizer", choices=["adam", "adagrad"], default=None)
    p.add_argument("--lr", type=common.positive_float, default=None)
    p.add_argument("--weight-decay", type=common.nonnegative_float, default=None, help="L2 penalty")
    p.add_argument(
        "--clip-grad-norm", type=common.positive_float, default=None, help="> 0 (default: none)"
    )
    p.add_argument(
        "--lr-step", type=common.positive_int, default=None, help="epochs between decays"
    )
    p.add_argument("--lr-gamma", type=common.decay_factor, default=None, help="1 = no decay")
    p.add_argument("--patience", type=common.positive_int, default=10)
    p.add_argument(
        "--monitor",
        default=None,
        help='validation metric for selection (default: HR@20; "AUC (100 neg.)" for DIN/DIEN)',
    )
    p.add_argument("--valid-fraction", type=common.holdout_fraction, default=0.1)
    p.add_argument(
        "--max-length", type=common.positive_int, default=None, help="keep the last N clicks"
    )
    p.add_argument(
        "--history-length",
        type=common.nonnegative_int,
        default=0,
        help="long-term history per sample (SDM)",
    )
    p.add_argument(
        "--negatives",
        type=common.nonnegative_int,
        default=None,
        help="also report metrics over N sampled negatives (default: 100 on amazon-games; "
        "0 = none)",
    )
    p.add_argument("--checkpoint-every", type=common.positive_int, default=None, help="steps")
    p.add_argument(
        "--max-steps", type=common.positive_int, default=None, help="cap steps per epoch"
    )
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt")
    p.add_argument("--device", type=common.device, default=None, help="e.g. cuda (default: cpu)")
    p.add_argument("--threads", type=common.threads, default="auto", help=common.THREADS_HELP)
    p.add_argument("--no-reuse-memory", action="store_true", help=common.REUSE_HELP)
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the processes torchrun starts (gloo on CPU, nccl on GPU; "
        "automatic under torchrun); --batch-size stays the global batch",
    )
    p.add_argument(
        "--retriever",
        default=None,
        help="rankers (din, dien): a retriever checkpoint; its top-k gives hard negatives "
        "(--model-arg negative_sampling=hard), a full-ranking --monitor (e.g. MRR@20) selects "
        "on the pipeline's validation metric, and the test table adds the pipeline",
    )
    p.add_argument(
        "-k", type=common.positive_int, default=100, help="two-stage candidates (with --retriever)"
    )
    p.add_argument(
        "--full-ranking",
        action="store_true",
        help="also rank the full catalogue with a ranker on test (costly: one pass per item)",
    )
    p.add_argument(
        "--refit",
        action="store_true",
        help="then retrain on the whole training file for the selected number of epochs "
        "(checkpoints in <run-dir>/refit/) and report both on test",
    )
    p.add_argument("--trust-item-ids", action="store_true", help=common.TRUST_HELP)


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", parents=parents, help="train SR-GNN on the synthetic log (about two minutes)"
    )
    add_train_arguments(
        p,
        epochs_help=f"default: {DEMO_EPOCHS}",
        run_dir_help=f"default: {DEMO_RUN_DIR} (replaced by each demo)",
    )
    p.set_defaults(
        func=cmd_demo, dataset="synthetic", model="srgnn", epochs=DEMO_EPOCHS, refit=False
    )

    p = sub.add_parser(
        "train", parents=parents, help="train a model, select on validation, report test"
    )
    add_train_arguments(p)
    p.set_defaults(func=cmd_train)
