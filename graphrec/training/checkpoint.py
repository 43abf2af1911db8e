"""Checkpoints: plain dicts of tensors and numbers, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from graphrec.models import build_model
from graphrec.models.base import SessionRecommender, compare_catalogues
from graphrec.serialization import UnsafeFileError, safe_torch_load

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
        CheckpointError: the file is truncated, not a torch file, refers to
            Python objects other than tensors and plain values (refused: they
            could run code), is not a graphrec checkpoint, or of an unknown
            version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = safe_torch_load(path, map_location=map_location)
    except UnsafeFileError as e:
        raise CheckpointError(f"{path}: cannot be read as a checkpoint: {e.reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a graphrec checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')!r}, this graphrec reads {VERSION}"
        )
    return state


def load_model(path: str | os.PathLike, map_location: str | None = "cpu") -> SessionRecommender:
    """Rebuild the model saved in a checkpoint, with its weights and item ids.

    The model also gets the click counts of its training items
    (``popularity_reference``), against which
    :meth:`~graphrec.models.SessionRecommender.check_data` compares the data
    it meets.

    Raises:
        CheckpointError: as :func:`load_checkpoint`; the saved config does
            not build a model that takes the saved weights; or the weights
            hold NaN or infinite values.
    """
    state = load_checkpoint(path, map_location)
    try:
        model = build_model(state["model"], **state["model_config"])
        model.load_state_dict(state["model_state"])
        model.set_labels(
            state.get("item_labels"), state.get("user_labels"), state.get("context_labels")
        )
        model.set_graph_weighting(state.get("graph_weighting"))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: its model config does not match its weights, or names no model "
            f"graphrec knows: {first}"
        ) from None
    try:
        model.check_finite(str(path))
    except ValueError as e:
        raise CheckpointError(f"{e}: refusing to use it") from None
    reference = state.get("popularity_reference")
    if isinstance(reference, torch.Tensor) and reference.shape == (2, model.num_items + 1):
        model.popularity_reference = reference.cpu()
    return model.eval()


def check_checkpoint_model(
    state: dict[str, Any], model: SessionRecommender, path: str | os.PathLike, other: str
) -> None:
    """Refuse a checkpoint whose catalogue differs from ``model``'s (resuming a
    run on other data): item ids or labels, and user labels."""
    ids = state.get("model_state", {}).get("item_ids")
    if ids is None:
        raise CheckpointError(f"{path}: the checkpoint has no item ids")
    compare_catalogues(
        (ids, state.get("item_labels")), (model.item_ids, model.item_labels), str(path), other
    )
    users = state.get("user_labels")
    if users is not None and model.user_labels is not None and users[1:] != model.user_labels[1:]:
        raise CheckpointError(f"{path} and {other} have different users (users.tsv)")
