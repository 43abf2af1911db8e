"""User-sequential benchmarks (``user item`` per line) with the leave-one-out protocol."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from graphrec.data.dataset import SessionDataset, _positions
from graphrec.data.graph import _ptr
from graphrec.datasets.io import data_root, log

SEQUENTIAL = ("amazon-games", "ml-100k")
_FILES = {"amazon-games": "Video.txt"}
#: Counts the files must give (SASRec's release of Amazon "Video Games", 5-core).
EXPECTED = {
    "amazon-games": {
        "users": 31013,
        "items": 23715,
        "interactions": 287107,
        "valid": 30901,
        "test": 30901,
    }
}
SPLITS = ("train", "valid", "test")
_NON_CANONICAL = re.compile(r"[^0-9\s]|(?:^|\s)0")


def read_interactions(path: str | os.PathLike) -> tuple[Tensor, Tensor]:
    """Read a ``user item`` file: one interaction per line, each user's lines in time order.

    Returns:
        ``(user, item)``: two LongTensors, in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, or a line does not hold exactly two
            positive integers; the message names the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"interactions file not found: {path}")
    text = path.read_text()
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing blank line at the end of the file is harmless
    if not lines:
        raise ValueError(f"{path}: the file is empty")
    tokens = text.split()
    values = None
    # canonical ids only: digits, no sign, no leading zero ("+3", "007" are refused)
    canonical = _NON_CANONICAL.search(text) is None
    if canonical and len(tokens) == 2 * len(lines):
        try:
            values = np.array(tokens, dtype=np.int64).reshape(-1, 2)
        except (ValueError, OverflowError):
            values = None
    if values is None:
        for lineno, line in enumerate(lines, start=1):  # slow path: find the bad line
            parts = line.split()
            if len(parts) != 2:
                raise ValueError(
                    f"{path}, line {lineno}: expected 'user item', got {len(parts)} field(s)"
                )
            for what, token in zip(("user", "item"), parts, strict=True):
                if not token.isdigit() or token.startswith("0") or int(token) <= 0:
                    raise ValueError(
                        f"{path}, line {lineno}: {what} id {token!r} is not a positive integer"
                    )
        raise ValueError(f"{path}: cannot be parsed as 'user item' lines")  # pragma: no cover
    return torch.from_numpy(values[:, 0].copy()), torch.from_numpy(values[:, 1].copy())


def _compact(ids: Tensor) -> tuple[Tensor, Tensor]:
    """Compact ids ``1 .. n`` of ``ids`` (sorted original order) and the original ids."""
    uniq = torch.unique(ids)
    return torch.searchsorted(uniq, ids) + 1, torch.cat([torch.zeros(1, dtype=torch.long), uniq])


def leave_one_out(
    sequence_ptr: Tensor, split: str, valid: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Which prefixes of every user sequence form ``split`` under leave-one-out.

    For a user with ``n >= 3`` interactions: test = the last item with all
    earlier items as input, validation = the second-to-last with the items
    before it, training = every prefix of the first ``n - 2`` items. Users with
    fewer than 3 interactions only train (on every prefix). With
    ``valid=False`` there is no validation target: training uses the first
    ``n - 1`` items (for a final fit after the epoch count was chosen).

    Returns:
        ``(sample_sequence, prefix_length, train_length)``: the samples, and
        how many leading items of each sequence the training split may see.
    """
    n = sequence_ptr.diff()
    evaluated = n >= 3
    held_out = torch.where(evaluated, torch.full_like(n, 2 if valid else 1), 0)
    train_length = n - held_out
    users = torch.arange(n.numel())
    if split == "test":
        return users[evaluated], n[evaluated] - 1, train_length
    if split == "valid":
        if not valid:
            raise ValueError("split='valid' needs a validation target (valid=True)")
        return users[evaluated], n[evaluated] - 2, train_length
    per_user = (train_length - 1).clamp(min=0)
    sample_sequence = torch.repeat_interleave(users, per_user)
    # longest prefix first, as prefix_augment orders the session benchmarks
    rank = torch.arange(sample_sequence.numel()) - _ptr(per_user)[:-1][sample_sequence]
    return sample_sequence, train_length[sample_sequence] - 1 - rank, train_length


def load_sequential(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    max_length: int | None = 50,
    history_length: int = 0,
    valid: bool = True,
    weighting: str = "binary",
) -> SessionDataset:
    r"""Load a user-sequential benchmark with the leave-one-out protocol.

    Reads ``<root>/amazon-games/Video.txt`` (``user item`` per line, each
    user's lines in time order); ``"ml-100k"`` is
    :func:`~graphrec.datasets.movielens.load_movielens`'s (with side
    fields). Every user's sequence becomes one "session" of the log: a
    sample's input is the most recent ``max_length`` items before its target
    (the short-term window, a session graph like any other), and its ``user``
    is set. See :func:`leave_one_out` for which
    targets form each split; the counts of the files are checked against
    :data:`EXPECTED`.

    Args:
        name (str): ``"amazon-games"`` or ``"ml-100k"``.
        root (str, optional): the data root (default: ``$GRAPHREC_DATA``, else
            ``./datasets``).
        split (str): ``"train"``, ``"valid"`` or ``"test"``. (default: ``"train"``)
        max_length (int, optional): the short-term window. (default: ``50``)
        history_length (int): also attach up to this many items that precede
            the window as the long-term history (SDM reads it). (default: ``0``)
        valid (bool): hold the second-to-last item out for validation;
            ``False`` trains on everything but the test item. (default: ``True``)
        weighting (str): edge weighting of the session graphs. (default: ``"binary"``)
    """
    if name not in SEQUENTIAL:
        raise ValueError(f"unknown sequential dataset {name!r}; choose one of {SEQUENTIAL}")
    if name == "ml-100k":  # its own files, with side fields
        from graphrec.datasets.movielens import load_movielens

        return load_movielens(root, split, max_length, history_length, valid, weighting)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = data_root(root) / name / _FILES[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"missing {path}: the SASRec release of the Amazon 'Video Games' reviews "
            "(see datasets/README.md); point the data root at a folder that has it "
            "(argument `root`, or $GRAPHREC_DATA)"
        )
    user_raw, item_raw = read_interactions(path)
    user, _ = _compact(user_raw)
    item, item_ids = _compact(item_raw)
    num_users, num_items = int(user.max()), item_ids.numel() - 1
    dataset = sequences_dataset(
        user, item, num_users, num_items, split, valid=valid, weighting=weighting,
        max_length=max_length, history_length=history_length, item_ids=item_ids,
        name=f"{name}/{split}",
    )  # fmt: skip
    counts = {"users": num_users, "items": num_items, "interactions": item.numel()}
    counts[split] = len(dataset)
    expected = EXPECTED[name]
    wrong = {k: (v, expected[k]) for k, v in counts.items() if k in expected and v != expected[k]}
    if wrong:
        raise ValueError(f"{path}: unexpected counts (got, expected): {wrong}")
    log.info("%s/%s: %d samples, %d users, %d items", name, split, len(dataset), num_users,
             num_items)  # fmt: skip
    return dataset


def sequences_dataset(
    user: Tensor,
    item: Tensor,
    num_users: int,
    num_items: int,
    split: str,
    valid: bool = True,
    weighting: str = "binary",
    max_length: int | None = 50,
    history_length: int = 0,
    **kwargs,
) -> SessionDataset:
    """The ``split`` of user sequences under leave-one-out (:func:`leave_one_out`).

    Args:
        user (LongTensor [T]): the user of each interaction (``1 .. num_users``).
        item (LongTensor [T]): its item (``1 .. num_items``); each user's
            interactions in time order, users possibly interleaved (a stable
            sort by user keeps that order).
        num_users (int): the number of users.
        num_items (int): the number of items.
        split (str): ``"train"``, ``"valid"`` or ``"test"``.
        valid (bool): hold the second-to-last item out. (default: ``True``)
        weighting (str): edge weighting. (default: ``"binary"``)
        max_length (int, optional): the short-term window. (default: ``50``)
        history_length (int): the long-term history. (default: ``0``)
        **kwargs: passed to :meth:`SessionDataset.from_prefixes` (``item_ids``,
            ``name``).
    """
    order = torch.argsort(user, stable=True)
    user, item = user[order], item[order]
    ptr = _ptr(torch.bincount(user, minlength=num_users + 1)[1:])
    sample_sequence, prefix_length, train_length = leave_one_out(ptr, split, valid)
    train_items = item[_positions(ptr[:-1], train_length)]
    return SessionDataset.from_prefixes(
        item,
        ptr,
        sample_sequence,
        prefix_length,
        num_items,
        weighting=weighting,
        max_length=max_length,
        session_user=torch.arange(1, num_users + 1),
        history_length=history_length,
        # the training split keeps each sequence's training part (row u: user u + 1)
        sessions=(train_items, _ptr(train_length)) if split == "train" else None,
        session_index=torch.arange(num_users) if split == "train" else None,
        num_users=num_users,
        **kwargs,
    )
