"""Training with validation-based model selection, checkpoints and exact resumption."""

from graphrec.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from graphrec.training.run_dir import RunDirectoryError, RunLock, prepare_run_dir
from graphrec.training.signals import TrainingInterrupted
from graphrec.training.trainer import NonFiniteLossError, Trainer, TrainResult

__all__ = [
    "CheckpointError",
    "NonFiniteLossError",
    "RunDirectoryError",
    "RunLock",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "load_checkpoint",
    "load_model",
    "prepare_run_dir",
    "save_checkpoint",
]
