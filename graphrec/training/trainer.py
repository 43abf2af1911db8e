"""Training loop with validation-based model selection and exact resumption."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from graphrec.checks import check_choice, check_device, check_float, check_int, warn_caller
from graphrec.data import SessionDataset, SessionLoader
from graphrec.distributed import (
    all_gather_cat,
    all_reduce_sum,
    is_distributed,
    is_main_process,
    rank,
    world_size,
    wrap,
)
from graphrec.evaluation import evaluate
from graphrec.memory import reuse_freed_memory
from graphrec.models import build_model, model_name
from graphrec.models.base import SessionRecommender, popularity_reference
from graphrec.threads import configure_threads
from graphrec.training.checkpoint import check_checkpoint_model, load_checkpoint, save_checkpoint
from graphrec.training.run_dir import RunLock, prepare_run_dir
from graphrec.training.signals import StopNow, StopOnSignal, TrainingInterrupted

log = logging.getLogger("graphrec.training")

OPTIMIZERS = ("adam", "adagrad")


def adopt_categories(model: SessionRecommender, train_data: SessionDataset) -> None:
    """Give a model built by hand with category embeddings (``num_categories > 0``)
    whose item categories were never set the training data's; warn when the
    data has none either (every item would train as category 0)."""
    category = getattr(model, "item_category", None)
    if category is None or bool(category.any()):
        return
    if train_data.item_category is not None:
        model.set_item_category(train_data.item_category)
    else:
        warn_caller(
            f"{type(model).__name__} has category embeddings but no item categories, and "
            f"{train_data.name} gives none: every item trains as category 0 (build it "
            "with num_categories=0, or from data with categories)"
        )


class NonFiniteLossError(FloatingPointError):
    """Training stopped: a step's loss (or gradient norm) was NaN or infinite."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    best_epoch: int | None
    best_metrics: dict[str, float] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False


class Trainer:
    r"""Trains a graphrec model and selects it on the validation split.

    After :meth:`fit` the model holds the weights of the selected epoch.

    The defaults are the SR-GNN paper's: Adam with learning rate ``1e-3`` and
    L2 penalty ``1e-5``, the learning rate multiplied by ``0.1`` every 3
    epochs, batches of 100. After every epoch the model is evaluated on
    ``valid_data``; the epoch with the best ``monitor`` value is kept
    (``best.pt``), and training stops after ``patience`` epochs without
    improvement. The test split is never looked at.

    **Several processes.** Built in every process of a ``torch.distributed``
    group (``torchrun``; see :mod:`graphrec.distributed`), the trainer wraps
    the model's loss in :class:`~torch.nn.parallel.DistributedDataParallel`:
    ``batch_size`` stays the global batch, each process computes its slice,
    and the result equals one process's up to float rounding (tested). The
    validation metrics are computed on shards and summed, exactly. Only rank 0
    writes checkpoints and logs; every process reads ``last.pt`` to resume, so
    ``run_dir`` must be on storage they share.

    A step whose loss is NaN or infinite stops the training with a
    :class:`NonFiniteLossError` naming the epoch, the step and the batch,
    before the broken step changes the weights.

    Everything needed to continue is checkpointed (``last.pt``: model,
    optimizer, scheduler, RNG state, epoch and step) at the end of every
    epoch, every ``checkpoint_every`` steps, and when training is interrupted.
    ``fit(resume=...)`` continues from it and ends with exactly the weights
    and metrics of an uninterrupted run: batches depend only on ``seed`` and
    the epoch. SIGINT (Ctrl-C) and SIGTERM (``kill``, a scheduler's time
    limit) stop training after the step under way, never inside it: ``last.pt``
    is saved there and :class:`~graphrec.training.TrainingInterrupted` (a
    ``KeyboardInterrupt``) is raised; a second signal stops at once, keeping
    the last checkpoint (:mod:`graphrec.training.signals`). Distributed, a
    signal stops every process where it is, and the last checkpoint stays.

    Args:
        model (SessionRecommender): the model; its ``item_ids`` should be set.
        train_data (SessionDataset): training samples.
        valid_data (SessionDataset, optional): validation samples. Without
            them the last epoch is kept and nothing stops early.
        epochs (int): maximum number of epochs. (default: ``30``)
        batch_size (int): samples per step. (default: ``100``)
        optimizer (str): ``"adam"`` (fused where available) or ``"adagrad"``
            (accumulator starting at 0). (default: ``"adam"``)
        lr (float): learning rate. (default: ``1e-3``)
        weight_decay (float): L2 penalty of the optimizer. (default: ``1e-5``)
        clip_grad_norm (float, optional): clip the global gradient norm to
            this value (> 0) before each step (the STAMP authors' code clips at
            110 or 150). (default: no clipping)
        lr_step (int): epochs between learning-rate decays. (default: ``3``)
        lr_gamma (float): decay factor. (default: ``0.1``)
        patience (int): epochs without improvement before stopping. (default: ``10``)
        monitor (str): validation metric to maximise. (default: ``"HR@20"``)
        ks (tuple of int): cut-offs of the validation metrics. (default: ``(5, 10, 20)``)
        negatives (int, optional): also compute the validation metrics over
            this many sampled negatives (``"HR@10 (100 neg.)"``,
            ``"AUC (100 neg.)"``, ...), which ``monitor`` may then name. A
            ranker (DIN, DIEN) monitored on one of them is validated on the
            sampled candidates only. (default: full ranking only)
        run_dir (str, optional): where checkpoints and ``metrics.jsonl`` go
            (nothing is written when ``None``). A folder that already holds a
            run is refused unless :meth:`fit` resumes it or ``overwrite`` is
            set, and a training holds a lock on it while it runs, so that two
            trainings never write into one folder.
        overwrite (bool): replace the run that ``run_dir`` holds (its
            checkpoints and logs are deleted when :meth:`fit` starts).
            (default: ``False``)
        seed (int): seed of the initialisation-independent randomness
            (batch order, RNG). (default: ``0``)
        checkpoint_every (int, optional): also checkpoint every this many steps.
        max_steps_per_epoch (int, optional): cut epochs short (quick runs).
        progress (bool): show a tqdm bar with loss and throughput. (default: ``True``)
        verbose (bool): print one line per epoch (loss, speed, validation
            metric), with or without the bar. (default: ``True``)
        run_info (dict, optional): plain values saved in checkpoints and
            ``config.json`` (e.g. the dataset name), for ``graphrec evaluate``.
        device (str, optional): where to train (default: the model's device).
        num_threads (int or str, optional): CPU threads: a number, or
            ``"auto"`` (:func:`graphrec.threads.choose_threads`: the CPUs
            available to the process, less those other processes keep busy,
            one for small models); ``None`` leaves torch's setting. The choice
            is logged and saved in the run's config. (default: ``"auto"``)
        distributed (bool, optional): train with every process of the
            ``torch.distributed`` group (default: whenever one of several
            processes is initialised).
        valid_model (SessionRecommender, optional): the model evaluated on
            ``valid_data`` instead of ``model`` itself, one that contains it:
            ``TwoStage(retriever, model)`` selects a ranker on the end-to-end
            metrics of the pipeline. (default: ``model``)
        reuse_memory (bool): on a CPU, make ``malloc`` keep freed blocks for
            the next step (:func:`graphrec.memory.reuse_freed_memory`, for
            the whole process): the step's large buffers then cost no page
            faults. (default: ``True``)
    """

    def __init__(
        self,
        model: SessionRecommender,
        train_data: SessionDataset,
        valid_data: SessionDataset | None = None,
        epochs: int = 30,
        batch_size: int = 100,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        clip_grad_norm: float | None = None,
        lr_step: int = 3,
        lr_gamma: float = 0.1,
        patience: int = 10,
        monitor: str = "HR@20",
        ks: Iterable[int] = (5, 10, 20),
        negatives: int | None = None,
        run_dir: str | os.PathLike | None = None,
        seed: int = 0,
        checkpoint_every: int | None = None,
        max_steps_per_epoch: int | None = None,
        progress: bool = True,
        run_info: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        valid_model: SessionRecommender | None = None,
        distributed: bool | None = None,
        num_threads: int | str | None = "auto",
        reuse_memory: bool = True,
        overwrite: bool = False,
        verbose: bool = True,
    ) -> None:
        check_int("epochs", epochs, minimum=1)
        check_int("batch_size", batch_size, minimum=1)
        check_choice("optimizer", optimizer, OPTIMIZERS)
        check_float("lr", lr, minimum=0, exclusive_minimum=True)
        check_float("weight_decay", weight_decay, minimum=0)
        if clip_grad_norm is not None:
            # a negative norm would flip every gradient (ascent), 0 would erase it
            check_float("clip_grad_norm", clip_grad_norm, minimum=0, exclusive_minimum=True)
        check_int("lr_step", lr_step, minimum=1)
        check_float("lr_gamma", lr_gamma, minimum=0, maximum=1, exclusive_minimum=True)
        check_int("patience", patience, minimum=1)
        for name, value in (("checkpoint_every", checkpoint_every),
                            ("max_steps_per_epoch", max_steps_per_epoch),
                            ("negatives", negatives)):  # fmt: skip
            if value is not None:
                check_int(name, value, minimum=1)
        check_int("seed", seed)
        if num_threads is not None and num_threads != "auto":
            check_int("num_threads", num_threads, minimum=1)
        if not isinstance(train_data, SessionDataset):
            raise TypeError(f"train_data must be a SessionDataset, got {type(train_data).__name__}")
        if len(train_data) == 0:
            raise ValueError(f"{train_data.name} has no training samples")
        adopt_categories(model, train_data)
        model.check_data(train_data, "the model")
        if valid_data is not None:
            model.check_data(valid_data, "the model")
        device = check_device(device)
        if num_threads is not None:
            hidden = getattr(model, "hidden_channels", 1)
            requested = None if num_threads == "auto" else int(num_threads)
            configure_threads(work=model.num_items * hidden, requested=requested)
        self.ks = tuple(ks)
        self.negatives = negatives
        valid_keys = {f"{m}@{k}" for m in ("HR", "MRR", "NDCG", "Coverage") for k in self.ks}
        if negatives is not None:
            valid_keys |= {f"{m}@{k} ({negatives} neg.)" for m in ("HR", "MRR", "NDCG") for k in ks}
            valid_keys |= {f"{m} ({negatives} neg.)" for m in ("AUC", "GAUC")}
        if monitor not in valid_keys:
            raise ValueError(f"monitor must be one of {sorted(valid_keys)}, got {monitor!r}")
        self.device = torch.device(device) if device else model.item_ids.device
        if reuse_memory and self.device.type == "cpu":
            reuse_freed_memory()
        self.model = model.to(self.device)
        # kept in checkpoints: data that meets the model later is compared with it
        self.popularity_reference = popularity_reference(train_data)
        model.popularity_reference = self.popularity_reference
        if model.graph_weighting is None:  # a model built by hand learns from these graphs
            model.set_graph_weighting(train_data.weighting)
        self.valid_model = valid_model.to(self.device) if valid_model is not None else model
        self.train_data, self.valid_data = train_data, valid_data
        self.epochs, self.patience, self.monitor = epochs, patience, monitor
        self.seed = seed
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self._stop = StopOnSignal(enabled=False)  # fit() installs the real one
        self.max_steps_per_epoch = max_steps_per_epoch
        self.progress = progress
        self.verbose = verbose
        self.overwrite = overwrite
        self.run_info = dict(run_info or {})
        self.hparams = {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "lr": lr,
            "weight_decay": weight_decay,
            "clip_grad_norm": clip_grad_norm,
            "lr_step": lr_step,
            "lr_gamma": lr_gamma,
            "patience": patience,
            "monitor": monitor,
            "ks": list(self.ks),
            "negatives": negatives,
            "seed": seed,
            "max_steps_per_epoch": max_steps_per_epoch,
            "processes": world_size(),
            "threads": torch.get_num_threads(),
            "train_samples": len(train_data),
        }
        self.distributed = is_distributed() if distributed is None else distributed
        if self.distributed and not is_distributed():
            raise ValueError(
                "distributed=True needs a torch.distributed process group of several "
                "processes (launch with torchrun; graphrec.distributed.init_distributed)"
            )
        # batch_size is the global batch: each process takes its slice of it
        self.loader = SessionLoader(
            train_data, batch_size, shuffle=True, seed=seed,
            num_replicas=world_size(), rank=rank(),
        )  # fmt: skip
        self._ddp = wrap(self.model, self.device) if self.distributed else None
        self.clip_grad_norm = clip_grad_norm
        if optimizer == "adam":
            fused = self.device.type in ("cpu", "cuda")
            self.optimizer = torch.optim.Adam(
                model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused
            )
        else:
            self.optimizer = torch.optim.Adagrad(
                model.parameters(), lr=lr, weight_decay=weight_decay
            )
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, lr_step, lr_gamma)
        # progress through training, saved in checkpoints
        self.epoch, self.step_in_epoch = 0, 0
        self.best_value, self.best_epoch, self.best_metrics = -math.inf, None, None
        self.bad_epochs, self.history = 0, []
        self._best_state: dict[str, torch.Tensor] | None = None
        # loss sum, samples and seconds of the current epoch so far (kept across a resume)
        self._epoch_progress = {"loss_sum": 0.0, "samples": 0, "seconds": 0.0}

    # -- checkpoints --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": model_name(self.model),
            "model_config": self.model.config(),
            "model_state": self.model.state_dict(),
            **self._labels(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            # distributed: every process's generator (they draw different negatives)
            "rng_ranks": all_gather_cat(torch.get_rng_state().unsqueeze(0))
            if self.distributed
            else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "epoch_progress": dict(self._epoch_progress),
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "best_metrics": self.best_metrics,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "hparams": self.hparams,
            "run_info": self.run_info,
            "popularity_reference": self.popularity_reference,
        }

    def load_state_dict(
        self, state: dict[str, Any], path: str | os.PathLike = "checkpoint"
    ) -> None:
        if state["model"] != model_name(self.model) or not _same_config(state, self.model):
            raise ValueError(
                f"{path} holds {state['model']}({state['model_config']}), "
                f"this trainer has {model_name(self.model)}({self.model.config()})"
            )
        check_checkpoint_model(state, self.model, path, "this training's data")
        if state["hparams"]["batch_size"] != self.loader.batch_size:
            raise ValueError(f"{path}: resuming with another batch size would change the batches")
        saved = state["hparams"].get("train_samples")
        if saved is not None and saved != len(self.train_data):
            raise ValueError(
                f"{path} was trained on {saved} samples, {self.train_data.name} has "
                f"{len(self.train_data)}: resuming on other data would not continue that run"
            )
        self.model.load_state_dict(state["model_state"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ranks = state.get("rng_ranks")
        if self.distributed and ranks is not None and ranks.size(0) == world_size():
            torch.set_rng_state(ranks[rank()].clone())
        else:
            torch.set_rng_state(state["rng"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        # the loss and time of the steps before the interruption (older checkpoints: none)
        self._epoch_progress = dict(state.get("epoch_progress") or self._epoch_progress)
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self.best_metrics, self.bad_epochs = state["best_metrics"], state["bad_epochs"]
        self.history = state["history"]

    def _labels(self) -> dict[str, Any]:
        """A click log's own ids, kept so that ``recommend`` speaks them after loading."""
        model = self.model
        return {
            "item_labels": model.item_labels,
            "user_labels": model.user_labels,
            "context_labels": model.context_labels,
            "graph_weighting": model.graph_weighting,
        }

    def _save_last(self) -> None:
        if self.run_dir is None:
            return
        state = self.state_dict()  # a collective when distributed: every process calls it
        if is_main_process():
            save_checkpoint(self.run_dir / "last.pt", state)

    def _save_best(self) -> None:
        if self.run_dir is None or not is_main_process():
            return
        state = {
            "model": model_name(self.model),
            "model_config": self.model.config(),
            "model_state": self.model.state_dict(),
            **self._labels(),
            "epoch": self.epoch,
            "metrics": self.best_metrics,
            "hparams": self.hparams,
            "run_info": self.run_info,
            "popularity_reference": self.popularity_reference,
        }
        save_checkpoint(self.run_dir / "best.pt", state)

    def _log(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.run_dir is not None and is_main_process():
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    # -- training -----------------------------------------------------------------
    def fit(self, resume: str | os.PathLike | bool | None = None) -> TrainResult:
        """Train until ``epochs`` or early stopping.

        Args:
            resume: a checkpoint path, or ``True`` for ``<run_dir>/last.pt``.

        Raises:
            RunDirectoryError: ``run_dir`` holds a run and neither ``resume``
                nor ``overwrite`` is given, there is nothing to resume, or
                another training is using ``run_dir``.
            NonFiniteLossError: a step's loss was NaN or infinite.
        """
        if resume is True and self.run_dir is None:
            raise ValueError("resume=True needs a run_dir")
        if self.run_dir is None or not is_main_process():
            return self._fit(resume)
        own = resume is True or (
            bool(resume) and Path(resume).resolve() == (self.run_dir / "last.pt").resolve()
        )
        with RunLock(self.run_dir):
            prepare_run_dir(self.run_dir, resume=own, overwrite=self.overwrite and not own)
            return self._fit(resume)

    def _fit(self, resume: str | os.PathLike | bool | None) -> TrainResult:
        if resume:
            path = self.run_dir / "last.pt" if resume is True else Path(resume)
            self.load_state_dict(load_checkpoint(path, map_location=str(self.device)), path)
            log.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step_in_epoch)
        else:
            # distributed: one stream per process (model weights come from rank 0)
            torch.manual_seed(self.seed + 1_000_003 * rank())
        if self.run_dir is not None and is_main_process():
            config = {
                "model": model_name(self.model),
                "model_config": self.model.config(),
                "hparams": self.hparams,
                "run_info": self.run_info,
            }
            (self.run_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
            # the log holds exactly the epochs of the checkpoint (none for a new run):
            # an epoch logged after the last checkpoint is not logged twice on resume
            _write_atomic(
                self.run_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in self.history)
            )
        # a run that had already stopped early stays stopped when resumed
        stopped = self.valid_data is not None and self.bad_epochs >= self.patience
        # SIGINT / SIGTERM stop the loop between two steps (not distributed: the
        # processes would not agree on the step; there the last checkpoint stays)
        self._stop = StopOnSignal(enabled=not self.distributed)
        try:
            with self._stop:
                while self.epoch < self.epochs and not stopped:
                    stats = self._train_epoch()
                    stopped = self._end_epoch(stats)
                if self._stop.requested():  # during the last validation: the run is done
                    raise self._interrupted()
        except TrainingInterrupted as e:
            self._save_last()
            if self.run_dir is not None:
                log.warning("%s: saved %s", e, self.run_dir / "last.pt")
            raise
        except StopNow:
            log.warning("stopped at once in %s: %s keeps the last checkpoint",
                        self._where(), self.run_dir)  # fmt: skip
            raise
        except KeyboardInterrupt:  # raised by other code (no handler of ours was installed)
            if self.distributed:  # no collective in an interrupt: the last checkpoint stays
                log.warning("interrupted in %s: resume from the last checkpoint in %s",
                            self._where(), self.run_dir)  # fmt: skip
                raise
            self._save_last()
            if self.run_dir is not None:
                log.warning("interrupted in %s: saved %s", self._where(), self.run_dir / "last.pt")
            raise
        self._restore_best()
        return TrainResult(self.best_epoch, self.best_metrics, self.history, stopped)

    def _where(self) -> str:
        return f"epoch {self.epoch + 1}/{self.epochs}, after step {self.step_in_epoch}"

    def _interrupted(self) -> TrainingInterrupted:
        return TrainingInterrupted(self._stop.received, self._where())

    def _restore_best(self) -> None:
        """Leave the model with the weights of the selected epoch."""
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        elif self.run_dir is not None and (self.run_dir / "best.pt").is_file():
            best = load_checkpoint(self.run_dir / "best.pt", map_location=str(self.device))
            self.model.load_state_dict(best["model_state"])

    def _train_epoch(self) -> dict[str, float]:
        self.model.train()
        self.loader.set_epoch(self.epoch)
        total = len(self.loader)
        if self.max_steps_per_epoch is not None:
            total = min(total, self.max_steps_per_epoch)
        bar = tqdm(
            total=total,
            initial=self.step_in_epoch,
            desc=f"epoch {self.epoch + 1}/{self.epochs}",
            disable=not self.progress or not is_main_process(),
            leave=False,
        )
        progress = self._epoch_progress
        if self.step_in_epoch == 0:
            progress.update(loss_sum=0.0, samples=0, seconds=0.0)
        start, before = time.perf_counter(), progress["seconds"]
        remaining = max(total - self.step_in_epoch, 0)
        try:
            for batch in itertools.islice(self.loader.iter_from(self.step_in_epoch), remaining):
                if self._stop.requested():  # between two whole steps: resumable exactly
                    raise self._interrupted()
                batch = batch.to(self.device)
                loss = self._train_step(batch)
                self.step_in_epoch += 1
                progress["loss_sum"] += loss * batch.num_sessions
                progress["samples"] += batch.num_sessions
                progress["seconds"] = before + time.perf_counter() - start
                rate = progress["samples"] / max(progress["seconds"], 1e-9)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{rate:.0f}", refresh=False)
                if self.checkpoint_every and self.step_in_epoch % self.checkpoint_every == 0:
                    self._save_last()
        finally:
            bar.close()  # also when interrupted: no message is glued onto the bar
        # the whole epoch's mean loss and speed, steps before a resume included
        # (and, distributed, the samples of every process)
        seconds = progress["seconds"]
        loss_sum, samples = all_reduce_sum(
            torch.tensor([progress["loss_sum"], float(progress["samples"])], dtype=torch.float64)
        ).tolist()
        return {
            "loss": loss_sum / max(samples, 1),
            "samples_per_s": samples / seconds if seconds > 0 else 0.0,
            "train_seconds": seconds,
        }

    def _train_step(self, batch) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        if self._ddp is None:
            loss = self.model.loss(batch)
            value = float(loss.detach())
            self._check_finite(value, "loss")
            loss.backward()
        else:
            # DDP averages gradients over processes; weighting each process's mean
            # loss by its share of the global batch makes that average the gradient
            # of the global batch's mean loss, as in one process
            loss = self._ddp(batch)
            value = float(loss.detach())
            # every process stops together (one of them alone would leave the others
            # waiting in the gradient all-reduce)
            broken = all_reduce_sum(torch.tensor([float(not math.isfinite(value))]))
            if float(broken) > 0:
                self._check_finite(value if not math.isfinite(value) else math.nan, "loss")
            share = batch.num_sessions * world_size() / self.loader.last_global_size
            (loss * share).backward()
        if self.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
            self._check_finite(float(norm), "gradient norm")
        self.optimizer.step()
        return value

    def _check_finite(self, value: float, what: str) -> None:
        """Stop before a NaN or infinite step reaches the weights."""
        if math.isfinite(value):
            return
        index = self.loader.last_index
        shown = "" if index is None else ", ".join(str(i) for i in index[:8].tolist())
        more = "" if index is None or index.numel() <= 8 else ", ..."
        saved = f" {self.run_dir / 'last.pt'} keeps the last checkpoint;" if self.run_dir else ""
        raise NonFiniteLossError(
            f"training stopped: the {what} is {value} in epoch {self.epoch + 1}, step "
            f"{self.step_in_epoch + 1} (the batch of training samples {shown}{more}); the "
            f"weights are those before this step.{saved} try a lower --lr (lr=), "
            "--clip-grad-norm (clip_grad_norm=), or check the data of that batch"
        )

    def _end_epoch(self, stats: dict[str, float]) -> bool:
        record: dict[str, Any] = {"epoch": self.epoch + 1, "lr": self.scheduler.get_last_lr()[0]}
        record.update(stats)
        improved = True
        if self.valid_data is not None:
            start = time.perf_counter()
            # a ranker's full-catalogue ranking costs a forward pass per item:
            # skipped when the monitored metric does not need it
            full = self.valid_model.cheap_full_ranking or not self.monitor.endswith(" neg.)")
            metrics = evaluate(
                self.valid_model,
                self.valid_data,
                ks=self.ks,
                negatives=self.negatives,
                full_ranking=full,
                distributed=self.distributed,
            )
            record["valid_seconds"] = time.perf_counter() - start
            record["valid"] = metrics
            value = metrics[self.monitor]
            improved = value > self.best_value
            if improved:
                self.best_value, self.best_metrics = value, metrics
        self.scheduler.step()
        if improved:
            self.best_epoch, self.bad_epochs = self.epoch + 1, 0
        else:
            self.bad_epochs += 1
        self.epoch += 1
        self.step_in_epoch = 0
        record["best_epoch"] = self.best_epoch
        self._log(record)
        if improved:
            self._best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self._save_best()
        self._save_last()
        summary = (
            f"epoch {record['epoch']}: loss {stats['loss']:.4f}, "
            f"{stats['samples_per_s']:.0f} samples/s"
        )
        if "valid" in record:
            summary += f", valid {self.monitor} {100 * record['valid'][self.monitor]:.2f}"
        if self.verbose and is_main_process():
            tqdm.write(summary)  # a line of its own beside a bar, or plain print without one
        else:
            log.info(summary)
        return self.valid_data is not None and self.bad_epochs >= self.patience


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _same_config(state: dict[str, Any], model: SessionRecommender) -> bool:
    """Whether a checkpoint's model configuration is ``model``'s.

    A checkpoint of an older graphrec lacks the constructor arguments added
    since, whose defaults compute what the older model did: the saved
    configuration is completed by building the model it describes.
    """
    saved, current = state["model_config"], model.config()
    if saved == current:
        return True
    if set(saved) - set(current):
        return False  # an argument this graphrec does not know
    try:
        with torch.device("meta"):  # no memory for the weights
            return build_model(state["model"], **saved).config() == current
    except (TypeError, ValueError):
        return False
