"""Reading and writing session files, and finding the data root."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from graphrec.data.graph import _ptr

log = logging.getLogger("graphrec.datasets")

# canonical item ids: plain digits without sign or leading zero ("+3", "007", "3.0" are refused)
_CANONICAL_ID = re.compile(r"[1-9][0-9]*")
_CANONICAL_LINE = re.compile(r"[ \t]*(?:[1-9][0-9]*[ \t]*)*")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else ``$GRAPHREC_DATA``, else ``./datasets``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("GRAPHREC_DATA")
    return Path(env) if env else Path("datasets")


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_sessions(path: str | os.PathLike, min_length: int = 2) -> tuple[Tensor, Tensor]:
    """Read a sessions file: one session per line, item ids separated by spaces.

    Args:
        path: the file.
        min_length (int): the fewest clicks a session may have (2 for the
            benchmark files, whose every line yields at least one sample).
            (default: ``2``)

    Returns:
        ``(items, ptr)``: all clicks concatenated, and session boundaries.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is empty, or a line is blank, holds a token that
            is not a positive integer, or has fewer than ``min_length`` clicks;
            the message names the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sessions file not found: {path}")
    text = decode(path.read_bytes(), path, hint="a sessions file holds item ids in digits")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # blank lines at the very end of the file are harmless
    if not lines:
        raise ValueError(f"{path}: the file is empty")
    lengths = np.empty(len(lines), dtype=np.int64)
    chunks = []
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split()
        ids = None
        if _CANONICAL_LINE.fullmatch(line):
            try:
                ids = np.array(tokens, dtype=np.int64)
            except (ValueError, OverflowError):
                ids = None
        if ids is None:
            for token in tokens:
                if not _CANONICAL_ID.fullmatch(token):
                    raise ValueError(
                        f"{path}, line {lineno}: {token!r} is not an item id (a positive "
                        "integer written in plain digits: no sign, no leading zero)"
                    )
            raise ValueError(f"{path}, line {lineno}: an item id does not fit in 64 bits")
        if ids.size and ids.min() <= 0:
            raise ValueError(
                f"{path}, line {lineno}: item id {int(ids.min())} is not positive "
                "(ids start at 1; 0 is padding)"
            )
        if ids.size < min_length:
            what = "blank line" if ids.size == 0 else f"session of {ids.size} click"
            raise ValueError(
                f"{path}, line {lineno}: {what}; sessions need at least {min_length} clicks"
            )
        lengths[lineno - 1] = ids.size
        chunks.append(ids)
    return torch.from_numpy(np.concatenate(chunks)), _ptr(torch.from_numpy(lengths))


def decode(
    data: bytes, path: str | os.PathLike, encoding: str = "utf-8", hint: str | None = None
) -> str:
    """``data`` decoded, a UTF-8 byte-order mark dropped; an undecodable byte is an
    error that names the file, the line and the byte.

    Raises:
        ValueError: ``data`` is not valid in ``encoding``.
    """
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        byte = data[e.start : e.start + 1].hex()
        hint = hint or "pass the file's encoding (encoding=, --encoding; e.g. latin-1, cp1252)"
        raise ValueError(
            f"{path}, line {line}, column {column}: byte 0x{byte} is not valid {encoding}; {hint}"
        ) from None
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None


def write_sessions(path: str | os.PathLike, sessions: list[list[int]]) -> None:
    """Write sessions in the text format read by :func:`read_sessions`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for s in sessions:
            f.write(" ".join(map(str, s)))
            f.write("\n")


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(
            f"refusing to load global '{module}.{name}': only lists, tuples and ints are allowed"
        )


def _check_plain(obj: Any, path: Path) -> None:
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, (list, tuple)):
            stack.extend(value)
        elif type(value) is not int:
            raise ValueError(
                f"{path}: found a {type(value).__name__}; an SR-GNN pickle holds only "
                "lists, tuples and ints"
            )


def read_srgnn_pickle(path: str | os.PathLike) -> Any:
    """Read an original SR-GNN pickle (``all_train_seq.txt``, ``train.txt``, ``test.txt``).

    A restricted unpickler admits only lists, tuples and ints: a pickle that
    refers to any class or function (``os.system``, ...) is refused before
    anything is executed.

    Returns:
        The list of sessions (``all_train_seq.txt``) or the pair
        ``(prefixes, targets)`` (``train.txt``, ``test.txt``).

    Raises:
        ValueError: the file is not such a pickle; the message names it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pickle not found: {path}")
    with open(path, "rb") as f:
        try:
            obj = _RestrictedUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
            raise ValueError(f"{path}: not a safe SR-GNN pickle ({e})") from None
    _check_plain(obj, path)
    return obj
