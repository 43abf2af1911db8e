"""The ``graphrec`` command line: demo, train, evaluate, recommend, preprocess, benchmark, plot."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import torch

from graphrec.datasets import (
    DATASETS,
    dataset_label,
    from_click_log,
    is_sequential,
    load_dataset,
    preprocess_diginetica,
    preprocess_yoochoose,
)
from graphrec.distributed import (
    init_distributed,
    is_distributed,
    is_main_process,
    launched_by_torchrun,
)
from graphrec.evaluation import (
    FaissRetriever,
    evaluate,
    evaluate_multi_target,
    evaluate_session_rec,
    format_table,
)
from graphrec.models import (
    MODELS,
    TRAINING_DEFAULTS,
    Popularity,
    RankingRecommender,
    SessionPopularity,
    TwoStage,
    build_model,
    model_arguments,
)
from graphrec.threads import configure_threads
from graphrec.training import Trainer, load_checkpoint, load_model

log = logging.getLogger("graphrec")


def _data_kwargs(args: argparse.Namespace) -> dict:
    kwargs = {
        "root": args.root,
        "valid_fraction": args.valid_fraction,
        "max_length": args.max_length,
        "history_length": args.history_length,
    }
    if args.dataset != "synthetic":
        kwargs["cache"] = not args.no_cache
    return kwargs


def _negatives(args: argparse.Namespace, dataset: str) -> int | None:
    """Sampled negatives: the flag, else 100 on user-sequential data (their
    protocol) or when the monitored metric is a sampled one."""
    if args.negatives is not None:
        return args.negatives or None
    monitor = getattr(args, "monitor", None) or ""
    return 100 if is_sequential(dataset) or monitor.endswith(" neg.)") else None


def _eval_negatives(args: argparse.Namespace, dataset: str, model) -> int | None:
    """As :func:`_negatives`; a ranker (DIN, DIEN) is also evaluated on 100 by default."""
    if args.negatives is None and not model.cheap_full_ranking:
        return 100
    return _negatives(args, dataset)


def _baselines(train, test, ks, negatives=None) -> dict[str, dict[str, float]]:
    counts = train.item_counts()
    shared = {"ks": ks, "negatives": negatives, "distributed": is_distributed()}
    return {
        "S-POP": evaluate(SessionPopularity(counts), test, **shared),
        "POP": evaluate(Popularity(counts), test, **shared),
    }


def _parse_value(text: str):
    if "," in text:  # a tuple, e.g. mlp_hidden=80,40
        return tuple(_parse_value(t) for t in text.split(",") if t.strip())
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


def _model_kwargs(args: argparse.Namespace) -> dict:
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
        kwargs[key] = _parse_value(value)
    return kwargs


def _resolve_training(args: argparse.Namespace) -> None:
    """Flags left unset take the model's training defaults (the registry's)."""
    defaults = {"epochs": 30, "monitor": "HR@20", **TRAINING_DEFAULTS[args.model]}
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def _new_model(args: argparse.Namespace, data, retriever=None):
    torch.manual_seed(args.seed)
    model = build_model(args.model, dataset=data, **_model_kwargs(args))
    if isinstance(model, RankingRecommender):
        model.set_retriever(retriever)
    elif retriever is not None:
        raise ValueError(f"--retriever: {args.model} is not a ranker (din, dien)")
    return model


def _load_retriever(args: argparse.Namespace, data):
    if getattr(args, "retriever", None) is None:
        return None
    retriever = load_model(args.retriever, map_location=args.device or "cpu")
    if retriever.num_items != data.num_items:
        raise ValueError(
            f"--retriever {args.retriever} has {retriever.num_items} items, "
            f"{data.name} has {data.num_items}"
        )
    return retriever.eval()


def _test(args: argparse.Namespace, model, data, negatives, ks=(5, 10, 20)) -> dict:
    """Test metrics; a ranker ranks the full catalogue only with --full-ranking
    (or ``--negatives 0``)."""
    full = model.cheap_full_ranking or args.full_ranking or negatives is None
    return evaluate(
        model, data, ks=ks, negatives=negatives, full_ranking=full, distributed=is_distributed()
    )


def _pipeline(args, retriever, ranker, data, negatives, ks=(5, 10, 20)) -> dict:
    """The first stage alone, with its recall@k (the ceiling of the re-ranker),
    and the two-stage pipeline: the ranker's scores alone, and fused with the
    retriever's (``TwoStage(fusion="product")``)."""
    k = args.k
    first = evaluate(
        retriever, data, ks=(*ks, k), negatives=negatives, distributed=is_distributed()
    )
    recall = first[f"HR@{k}"]
    if k not in ks:  # keep the table's cut-offs; recall@k gets its own column
        first = {m: v for m, v in first.items() if m.split(" (")[0].split("@")[-1] != str(k)}
    first[f"Recall@{k}"] = recall
    r, m = type(retriever).__name__, type(ranker).__name__
    table = {f"{r} (first stage)": first}
    for fusion in ("none", "product"):
        pipeline = TwoStage(retriever, ranker, k=k, fusion=fusion)
        start = time.perf_counter()
        result = evaluate(pipeline, data, ks=ks, negatives=negatives, distributed=is_distributed())
        seconds = time.perf_counter() - start
        print(f"two-stage evaluation ({fusion}) of {len(data)} samples in {seconds:.1f} s")
        name = f"{r} -> {m} (k={k})" if fusion == "none" else f"{r} x {m} (k={k}, product)"
        table[name] = result
    return table


def _fit(
    args: argparse.Namespace, model, train, valid, run_dir: Path, epochs: int, info: dict,
    retriever=None,
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
        negatives=_negatives(args, args.dataset) if args.monitor.endswith("neg.)") else None,
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
    )
    return trainer.fit(resume=args.resume)


def _train(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    if getattr(args, "distributed", False) or launched_by_torchrun():
        if not init_distributed(args.device):
            raise ValueError(
                "--distributed: launch with torchrun, e.g. "
                "torchrun --nproc-per-node 2 --no-python graphrec train ... --distributed"
            )
        if not is_main_process():  # rank 0 prints and writes; the others compute
            sys.stdout = open(os.devnull, "w")
    _resolve_training(args)
    kwargs = _data_kwargs(args)
    train = load_dataset(args.dataset, "train", **kwargs)
    valid = load_dataset(args.dataset, "valid", **kwargs) if args.valid_fraction > 0 else None
    test = load_dataset(args.dataset, "test", **kwargs)
    print(
        f"{dataset_label(args.dataset)}: {len(train)} train / {len(valid) if valid else 0} valid / "
        f"{len(test)} test samples, {train.num_items} items"
    )
    retriever = _load_retriever(args, train)
    model = _new_model(args, train, retriever)
    negatives = _eval_negatives(args, args.dataset, model)
    print(model)
    label = dataset_label(args.dataset)
    run_dir = Path(args.run_dir or f"runs/{args.model}-{label}")
    args.resume_hint = _resume_command(run_dir)
    info = {"dataset": args.dataset, **{k: v for k, v in kwargs.items() if k != "root"}}
    start = time.perf_counter()
    result = _fit(args, model, train, valid, run_dir, args.epochs, info, retriever)
    print(f"trained in {time.perf_counter() - start:.0f} s; selected epoch {result.best_epoch}")
    name = type(model).__name__
    table = {f"{name} (epoch {result.best_epoch})": _test(args, model, test, negatives)}
    if args.refit and valid is not None:
        # The epoch count was chosen on validation; retrain on the whole training file.
        full = load_dataset(args.dataset, "train", **{**kwargs, "valid_fraction": 0})
        refit = _new_model(args, full, retriever)
        args.resume = False
        info = {**info, "valid_fraction": 0, "refit_of": str(run_dir)}
        _fit(args, refit, full, None, run_dir / "refit", result.best_epoch, info)
        table[f"{name} refit, 100% train, {result.best_epoch} ep."] = _test(
            args, refit, test, negatives
        )
        model = refit
    if retriever is not None:
        table.update(_pipeline(args, retriever, model, test, negatives))
    table.update(_baselines(train, test, (5, 10, 20), negatives))
    if is_main_process():
        (run_dir / "test_metrics.json").write_text(json.dumps(table, indent=2) + "\n")
    print(f"\ntest split, {len(test)} samples (%):")
    print(format_table(table))
    print(f"\ncheckpoints and logs in {run_dir}/")
    return table


def cmd_train(args: argparse.Namespace) -> None:
    _train(args)


def cmd_demo(args: argparse.Namespace) -> None:
    print("graphrec demo: SR-GNN on the embedded synthetic click log\n")
    _train(args)
    model = load_model(Path(args.run_dir or "runs/srgnn-synthetic") / "best.pt")
    session = [3, 17, 3]
    top = model.recommend([session], k=10)[0].tolist()
    print(f"\nrecommend({session}, k=10) -> {top}")


def _configure_threads(args: argparse.Namespace, model) -> None:
    requested = None if args.threads == "auto" else args.threads
    configure_threads(model.num_items * getattr(model, "hidden_channels", 1), requested)


def _checkpoint_data(args: argparse.Namespace, state: dict):
    info = state.get("run_info", {})
    name = args.dataset or info.get("dataset")
    if name is None:
        raise SystemExit("the checkpoint names no dataset: pass --dataset")
    kwargs = {
        "root": args.root,
        "valid_fraction": info.get("valid_fraction", 0.1),
        "max_length": info.get("max_length"),
        "history_length": info.get("history_length", 0),
    }
    if name != "synthetic":
        kwargs["cache"] = not args.no_cache
    return name, kwargs


def cmd_evaluate(args: argparse.Namespace) -> None:
    if args.checkpoint is None:
        if args.retriever is None or args.ranker is None:
            raise ValueError("pass --checkpoint, or --retriever and --ranker (two-stage)")
        return _evaluate_pipeline(args)
    if args.retriever is not None or args.ranker is not None:
        raise ValueError(
            "--checkpoint evaluates one model; for two stages pass only --retriever and --ranker"
        )
    state = load_checkpoint(args.checkpoint)
    model = load_model(args.checkpoint)
    _configure_threads(args, model)
    name, kwargs = _checkpoint_data(args, state)
    data = load_dataset(name, args.split, **kwargs)
    if data.num_items != model.num_items:
        raise SystemExit(
            f"{args.checkpoint} has {model.num_items} items, {name} has {data.num_items}"
        )
    ks = tuple(args.ks)
    negatives = _eval_negatives(args, name, model)
    title = f"{type(model).__name__} ({args.checkpoint})"
    start = time.perf_counter()
    full = model.cheap_full_ranking or args.full_ranking or negatives is None
    table = {
        title: evaluate(
            model, data, ks=ks, batch_size=args.batch_size, negatives=negatives, full_ranking=full
        )
    }
    what = "full ranking" if full else f"ranking against {negatives} sampled negatives"
    print(f"{what} of {len(data)} samples in {time.perf_counter() - start:.1f} s")
    if args.faiss:
        retriever = FaissRetriever(model.item_vectors(), kind=args.faiss, metric=model.metric)
        table[f"{title} via faiss {args.faiss}"] = evaluate(model, data, ks=ks, retriever=retriever)
    if args.baselines:
        table.update(_baselines(load_dataset(name, "train", **kwargs), data, ks, negatives))
    print(f"{name} / {args.split} (%):")
    print(format_table(table))
    if args.multi_target:
        mt = evaluate_multi_target(model, data, ks=ks)
        print("\nmulti-target (first 80% of each session -> the rest):")
        print(format_table({title: mt}))
    if args.session_rec:
        sr = evaluate_session_rec(model, data, ks=ks)
        print(
            "\nsession-rec protocol (every position; HR/MRR: the next click; "
            "P/R/MAP/NDCG: the rest of the session):"
        )
        print(format_table({title: sr}))


def _evaluate_pipeline(args: argparse.Namespace) -> None:
    ranker = load_model(args.ranker)
    _configure_threads(args, ranker)
    name, kwargs = _checkpoint_data(args, load_checkpoint(args.ranker))
    data = load_dataset(name, args.split, **kwargs)
    retriever = _load_retriever(args, data)
    if ranker.num_items != data.num_items:
        raise ValueError(f"{args.ranker} has {ranker.num_items} items, {name} has {data.num_items}")
    negatives = _eval_negatives(args, name, ranker)
    ks = tuple(args.ks)
    table = _pipeline(args, retriever, ranker, data, negatives, ks)
    if args.baselines:
        table.update(_baselines(load_dataset(name, "train", **kwargs), data, ks, negatives))
    print(f"{name} / {args.split} (%):")
    print(format_table(table))


def _id_lists(flag: str, texts: list[str], as_text: bool) -> list[list]:
    """Ids from ``--session "12 7 33"`` (spaces or commas): integers, or the
    log's own text ids when the model keeps them."""
    out = []
    for text in texts:
        tokens = text.replace(",", " ").split()
        if as_text:
            out.append(tokens)
            continue
        try:
            out.append([int(t) for t in tokens])
        except ValueError:
            raise ValueError(f"{flag} {text!r}: item ids must be integers") from None
    return out


def _users(model, texts: list[str] | None) -> list | None:
    if texts is None:
        return None
    labels = model.user_labels
    if labels is not None and any(isinstance(v, str) for v in labels[1:]):
        return texts
    try:
        return [int(t) for t in texts]
    except ValueError:
        raise ValueError(f"--user {texts}: user ids must be integers") from None


def cmd_recommend(args: argparse.Namespace) -> None:
    model = load_model(args.checkpoint)
    as_text = model.item_labels is not None
    sessions = _id_lists("--session", args.session, as_text)
    histories = None if args.history is None else _id_lists("--history", args.history, as_text)
    items, scores = model.recommend(
        sessions,
        k=args.k,
        exclude_seen=args.exclude_seen,
        return_scores=True,
        users=_users(model, args.user),
        histories=histories,
    )
    rows = items if isinstance(items, list) else items.tolist()
    for session, row, row_scores in zip(sessions, rows, scores.tolist(), strict=True):
        if args.json:
            print(json.dumps({"session": session, "items": row, "scores": row_scores}))
        else:
            print(" ".join(map(str, session)), "->", " ".join(map(str, row)))


def cmd_preprocess(args: argparse.Namespace) -> None:
    if args.source == "clicks":
        stats = from_click_log(
            args.raw,
            args.out,
            session=None if args.session_col in ("", "none") else args.session_col,
            item=args.item_col,
            time=None if args.time_col in ("", "none") else args.time_col,
            user=args.user_col,
            sep=args.sep,
            time_format=args.time_format,
            time_unit=args.time_unit,
            mode=args.mode,
            min_item_support=args.min_item_support,
            min_session_length=args.min_session_length,
            test_days=args.test_days,
            test_fraction=args.test_fraction,
            duplicates=args.duplicates,
            unsorted=args.unsorted,
        )
        print(json.dumps(stats, indent=2))
        print(f"\nwritten to {args.out}/; train with: graphrec train --dataset {args.out}")
        return
    if args.out is None:
        args.out = "datasets"
    if args.source == "diginetica":
        stats = preprocess_diginetica(args.raw, args.out)
    else:
        stats = preprocess_yoochoose(args.raw, args.out, fractions=tuple(args.fractions))
    print(json.dumps(stats, indent=2))


def cmd_benchmark(args: argparse.Namespace) -> None:
    from graphrec.benchmark import results_markdown, run_benchmark

    result = run_benchmark(
        [m.strip() for m in args.models.split(",") if m.strip()],
        args.dataset,
        seeds=[int(s) for s in args.seeds.split(",") if s.strip()],
        out_dir=args.out,
        root=args.root,
        epochs=args.epochs,
        max_steps=args.max_steps,
        patience=args.patience,
        max_length=args.max_length,
        history_length=args.history_length,
        cache=not args.no_cache,
        device=args.device,
        progress=not args.no_progress,
        train=not args.report,
        negatives=args.negatives,
        num_threads=args.threads,
        reuse_memory=not args.no_reuse_memory,
    )
    print(f"\n{result['dataset']}, test split (%; mean ± std over seeds):")
    print(results_markdown(result))


def cmd_plot(args: argparse.Namespace) -> None:
    from graphrec import plot

    if (args.run_dir is None) == (args.embeddings is None):
        raise ValueError("pass a RUN_DIR, or --embeddings CKPT")
    if args.run_dir is not None:
        written = plot.plot_run(args.run_dir, out=args.out, metrics=args.metrics)
    else:
        written = plot.plot_embeddings(
            args.embeddings,
            out=args.out,
            color=args.color,
            sample=args.sample,
            dataset=args.dataset,
            root=args.root,
            seed=args.seed,
        )
    print(f"wrote {written}")


_THREADS_HELP = (
    "CPU threads: a number, or auto (default): the CPUs available to the process "
    "(affinity, cgroup quota), less those other processes keep busy; one for small models"
)


_REUSE_HELP = (
    "leave malloc's thresholds alone (by default freed CPU memory is kept for the next "
    "step: no page faults for the large buffers; the process keeps its peak memory)"
)


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


_DATASET_HELP = (
    f"one of {', '.join(DATASETS)}, or the path of a folder written by "
    "`graphrec preprocess clicks` (or holding train_sessions.txt and test_sessions.txt)"
)


def _resume_command(run_dir: Path) -> str:
    """The command line that continues an interrupted run."""
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    if not argv:
        return f"graphrec train ... --run-dir {run_dir} --resume"
    return "graphrec " + " ".join(argv) + " --resume"


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=None, help="default: the model's (30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default=None, help="default: runs/<model>-<dataset>")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--model", default="srgnn", choices=sorted(MODELS))
    p.add_argument(
        "--model-arg",
        action="append",
        metavar="NAME=VALUE",
        help="a constructor argument of the model, e.g. variant=code (repeatable)",
    )
    p.add_argument("--dataset", default="diginetica", help=_DATASET_HELP)
    p.add_argument("--root", default=None, help="data root (default: $GRAPHREC_DATA or ./datasets)")
    p.add_argument("--no-cache", action="store_true", help="do not cache processed graphs")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's")
    p.add_argument("--hidden", type=int, default=None, help="hidden_channels (model default)")
    p.add_argument("--layers", type=int, default=None, help="num_layers (model default)")
    p.add_argument("--optimizer", choices=["adam", "adagrad"], default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-decay", type=float, default=None, help="L2 penalty")
    p.add_argument("--clip-grad-norm", type=float, default=None)
    p.add_argument("--lr-step", type=int, default=None, help="epochs between decays")
    p.add_argument("--lr-gamma", type=float, default=None, help="1 = no decay")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument(
        "--monitor",
        default=None,
        help='validation metric for selection (default: HR@20; "AUC (100 neg.)" for DIN/DIEN)',
    )
    p.add_argument("--valid-fraction", type=float, default=0.1)
    p.add_argument("--max-length", type=int, default=None, help="keep the last N clicks")
    p.add_argument(
        "--history-length", type=int, default=0, help="long-term history per sample (SDM)"
    )
    p.add_argument(
        "--negatives",
        type=int,
        default=None,
        help="also report metrics over N sampled negatives (default: 100 on amazon-games; "
        "0 = none)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps")
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/last.pt")
    p.add_argument("--device", default=None, help="e.g. cuda (default: cpu)")
    p.add_argument("--threads", type=_threads, default="auto", help=_THREADS_HELP)
    p.add_argument("--no-reuse-memory", action="store_true", help=_REUSE_HELP)
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
    p.add_argument("-k", type=int, default=100, help="two-stage candidates (with --retriever)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrec", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    # -v also after the sub-command; SUPPRESS keeps a -v given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log details"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo", parents=[common], help="train SR-GNN on the synthetic log (about two minutes)"
    )
    _add_train_arguments(p)
    p.set_defaults(func=cmd_demo, dataset="synthetic", model="srgnn", epochs=5, refit=False)

    p = sub.add_parser(
        "train", parents=[common], help="train a model, select on validation, report test"
    )
    _add_train_arguments(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "evaluate",
        parents=[common],
        help="evaluate a checkpoint, or a retriever -> ranker pipeline",
    )
    p.add_argument("--checkpoint", default=None, help="a model to evaluate")
    p.add_argument("--retriever", default=None, help="two stages: the first-stage checkpoint")
    p.add_argument("--ranker", default=None, help="two stages: the re-ranking checkpoint")
    p.add_argument("-k", type=int, default=100, help="candidates passed to the ranker")
    p.add_argument(
        "--full-ranking",
        action="store_true",
        help="rank the full catalogue with a ranker (DIN/DIEN; costly: one pass per item)",
    )
    p.add_argument("--device", default=None, help="e.g. cuda (default: cpu)")
    p.add_argument("--threads", type=_threads, default="auto", help=_THREADS_HELP)
    p.add_argument("--dataset", default=None, help="default: the training one; " + _DATASET_HELP)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--root", default=None)
    p.add_argument("--no-cache", action="store_true", help="do not cache processed graphs")
    p.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--faiss", choices=["flat", "hnsw", "ivf"], default=None)
    p.add_argument("--baselines", action="store_true", help="also evaluate POP and S-POP")
    p.add_argument("--multi-target", action="store_true", help="also the 80%% protocol")
    p.add_argument(
        "--session-rec",
        action="store_true",
        help="also the session-rec protocol (P@K, R@K, MAP@K, NDCG@K of the rest of the session)",
    )
    p.add_argument(
        "--negatives", type=int, default=None, help="metrics over N sampled negatives too"
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "recommend", parents=[common], help="top-k next items for sessions (original ids)"
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--session", action="append", required=True, help='e.g. "12 7 33"')
    p.add_argument(
        "--user", action="append", type=int, help="the user of each --session (0 = unknown)"
    )
    p.add_argument(
        "--history", action="append", help="the long-term history of each --session (SDM)"
    )
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--exclude-seen", action="store_true")
    p.add_argument("--json", action="store_true", help="one JSON object per session")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser(
        "preprocess",
        parents=[common],
        help="a raw log (Diginetica, YooChoose, or your own clicks) -> a dataset folder",
    )
    p.add_argument("source", choices=["diginetica", "yoochoose", "clicks"])
    p.add_argument(
        "raw", help="train-item-views.csv, yoochoose-clicks.dat, or your CSV/TSV/Parquet log"
    )
    p.add_argument(
        "--out",
        default=None,
        help="diginetica/yoochoose: the data root to write into (default: datasets); "
        "clicks: the dataset folder to write (required)",
    )
    p.add_argument("--fractions", type=int, nargs="+", default=[64, 4], help="YooChoose 1/N")
    g = p.add_argument_group("clicks (your own log; defaults: the SR-GNN reference protocol)")
    g.add_argument("--session-col", default="session_id", help="'none' for sequential mode")
    g.add_argument("--item-col", default="item_id")
    g.add_argument("--time-col", default="timestamp", help="'none' keeps file order (sequential)")
    g.add_argument("--user-col", default=None, help="needed in sequential mode")
    g.add_argument("--sep", default=None, help="field separator (default: guessed)")
    g.add_argument("--time-format", default=None, help="e.g. %%Y-%%m-%%d (default: number/ISO)")
    g.add_argument("--time-unit", default="s", choices=["s", "ms", "us", "ns"])
    g.add_argument("--mode", default=None, choices=["session", "sequential"])
    g.add_argument("--min-item-support", type=int, default=5)
    g.add_argument("--min-session-length", type=int, default=2)
    g.add_argument("--test-days", type=float, default=7, help="test = the last N days")
    g.add_argument("--test-fraction", type=float, default=None, help="or the latest share")
    g.add_argument("--duplicates", default="keep", choices=["keep", "drop", "error"])
    g.add_argument("--unsorted", default="sort", choices=["sort", "error"])
    p.set_defaults(func=cmd_preprocess)

    p = sub.add_parser(
        "benchmark",
        parents=[common],
        help="train several models over seeds; one comparison table (Markdown, CSV, JSON)",
    )
    p.add_argument("--models", default="srgnn,stamp,attrec,sdm,din,dien", help="comma separated")
    p.add_argument("--dataset", default="diginetica", help=_DATASET_HELP)
    p.add_argument("--seeds", default="0,1,2", help="comma separated")
    p.add_argument("--out", default=None, help="default: benchmarks/results/<dataset>")
    p.add_argument("--root", default=None)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--epochs", type=int, default=None, help="default: each model's")
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--history-length", type=int, default=0)
    p.add_argument("--negatives", type=int, default=100, help="sampled test negatives (AUC)")
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=_threads, default="auto", help=_THREADS_HELP)
    p.add_argument("--no-reuse-memory", action="store_true", help=_REUSE_HELP)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--report", action="store_true", help="train nothing: tables from the runs already done"
    )
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser(
        "plot",
        parents=[common],
        help="training curves of a run, or a t-SNE map of a checkpoint's item embeddings",
    )
    p.add_argument("run_dir", nargs="?", default=None, help="a run directory (metrics.jsonl)")
    p.add_argument("--embeddings", default=None, metavar="CKPT", help="a checkpoint to map")
    p.add_argument("--out", default=None, help="the figure (.png or .svg; default: beside)")
    p.add_argument("--metrics", nargs="+", default=None, help="validation metrics to draw")
    p.add_argument("--color", default="popularity", choices=["popularity", "category"])
    p.add_argument("--sample", type=int, default=2000, help="items on the t-SNE map")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default=None, help="default: the checkpoint's")
    p.add_argument("--root", default=None)
    p.set_defaults(func=cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s",
    )
    try:
        args.func(args)
    except (OSError, ValueError, ImportError) as e:  # files, bad input, a missing extra
        print(f"graphrec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = getattr(args, "resume_hint", None)
        print(f"\ngraphrec {args.command}: interrupted", file=sys.stderr)
        if hint:
            print(f"progress saved; continue with:\n  {hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
