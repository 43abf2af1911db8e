"""Checkpoints: plain dicts of tensors and numbers, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from graphrec.models import build_model
from graphrec.models.base import SessionRecommender

FORMAT = "graphrec-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (truncated, foreign, wrong version)."""


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` atomically: a crash mid-write never leaves a broken file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | None = "cpu") -> dict[str, Any]:
    """Read a graphrec checkpoint safely (``torch.load(..., weights_only=True)``).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is truncated, not a torch file, not a
            graphrec checkpoint, or of an unknown version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):  # garbage, not a pickle of objects
            raise CheckpointError(
                f"{path}: cannot be read as a checkpoint (truncated, or not a torch file)"
            ) from None
        # torch's message advises weights_only=False, i.e. running the file's code
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f" ({found.group(1)})" if found else ""  # found: checked above
        raise CheckpointError(
            f"{path}: refused: it holds Python objects other than tensors and plain "
            f"values{what}, which could run code when unpickled. A graphrec checkpoint "
            "never does; graphrec will not load this file."
        ) from None
    except Exception as e:  # truncated zips fail in many ways inside torch.load
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: cannot be read as a checkpoint (truncated, or not a torch file): {first}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a graphrec checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')!r}, this graphrec reads {VERSION}"
        )
    return state


def load_model(path: str | os.PathLike, map_location: str | None = "cpu") -> SessionRecommender:
    """Rebuild the model saved in a checkpoint, with its weights and item ids.

    Raises:
        CheckpointError: as :func:`load_checkpoint`, or the saved config does
            not build a model that takes the saved weights.
    """
    state = load_checkpoint(path, map_location)
    try:
        model = build_model(state["model"], **state["model_config"])
        model.load_state_dict(state["model_state"])
        model.set_labels(state.get("item_labels"), state.get("user_labels"))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: its model config does not match its weights, or names no model "
            f"graphrec knows: {first}"
        ) from None
    return model.eval()
