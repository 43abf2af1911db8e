"""Training with validation-based model selection, checkpoints and exact resumption."""

from graphrec.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from graphrec.training.trainer import Trainer, TrainResult

__all__ = [
    "CheckpointError",
    "TrainResult",
    "Trainer",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]
