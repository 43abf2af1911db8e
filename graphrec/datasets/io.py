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
# (each id ends in blanks or at the end of the line: no two ways to split a run of
# digits, so a bad line fails in linear time instead of backtracking exponentially)
_CANONICAL_LINE = re.compile(r"[ \t]*(?:[1-9][0-9]*(?:[ \t]+|$))*")


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
    data = path.read_bytes()
    parsed = _parse_digits(data, path, min_length)
    if parsed is not None:
        return parsed
    text = decode(data, path, hint="a sessions file holds item ids in digits")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()  # blank lines at the very end of the file are harmless
    if not lines:
        raise ValueError(f"{path}: the file is empty")
    lengths = np.empty(len(lines), dtype=np.int64)
    chunks = []
    for lineno, line in enumerate(lines, start=1):
        ids = _line_ids(path, lineno, line, min_length)
        lengths[lineno - 1] = ids.size
        chunks.append(ids)
    return torch.from_numpy(np.concatenate(chunks)), _ptr(torch.from_numpy(lengths))


def _line_ids(path: Path, lineno: int, line: str, min_length: int) -> np.ndarray:
    """The ids of one line of a sessions file; a bad line raises, naming it."""
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
    return ids


#: bytes of the fast path: digits, space, tab, line feed, carriage return
_PLAIN = np.zeros(256, dtype=bool)
_PLAIN[[ord(c) for c in "0123456789 \t\n\r"]] = True
_BLANKS = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def _parse_digits(
    data: bytes, path: Path, min_length: int, chunk: int = 1 << 23
) -> tuple[Tensor, Tensor] | None:
    """:func:`read_sessions` vectorised over the file's bytes (numpy, no Python
    loop per line, ``chunk`` bytes at a time), or ``None`` when the file holds
    anything but ASCII digits, blanks and line breaks (``\\n``, ``\\r\\n``), or
    an id of 19 digits or more: the per-line reader handles those. A bad line
    raises the per-line reader's message."""
    raw = np.frombuffer(data, dtype=np.uint8)
    tail = raw[-(1 << 16) :]
    digits = np.flatnonzero((tail >= 48) & (tail <= 57))
    if digits.size == 0:  # blank to its end: the per-line reader words the error
        return None
    # blank lines at the very end of the file are harmless (blanks only after the last id)
    end = raw.size - tail.size + int(digits[-1]) + 1
    if not np.isin(raw[end:], _BLANKS).all():
        return None
    raw = raw[:end]
    ids, lengths, first_line = [], [], 0
    start = 0
    while start < raw.size:
        stop = raw.size
        if stop - start > chunk:  # end the chunk after a line feed
            window = max(start, start + chunk - (1 << 16))
            feeds = np.flatnonzero(raw[window : start + chunk] == 10)
            if feeds.size == 0:
                return None  # a line of more than 64 KiB: the per-line reader
            stop = window + int(feeds[-1]) + 1
        part = _parse_chunk(raw[start:stop], min_length)
        if part is None:
            return None
        if isinstance(part, int):  # the first bad line of the chunk
            lineno = first_line + part + 1
            text = data[start:stop].decode("ascii").split("\n")[part].rstrip("\r")
            _line_ids(path, lineno, text, min_length)  # raises, naming the line
            return None  # (not reached: the per-line reader finds the line bad too)
        ids.append(part[0])
        lengths.append(part[1])
        first_line += part[1].size
        start = stop
    return torch.from_numpy(np.concatenate(ids)), _ptr(torch.from_numpy(np.concatenate(lengths)))


def _parse_chunk(raw: np.ndarray, min_length: int) -> tuple[np.ndarray, np.ndarray] | int | None:
    """The ids and line lengths of whole lines of bytes; the index of its first
    bad line; or ``None`` when the bytes need the per-line reader."""
    if not _PLAIN[raw].all():
        return None
    cr = np.flatnonzero(raw == 13)
    if cr.size and (cr[-1] + 1 >= raw.size or bool((raw[cr + 1] != 10).any())):
        return None  # a bare carriage return: a line break of its own
    digit = (raw >= 48) & (raw <= 57)
    edge = np.diff(digit.view(np.int8), prepend=0, append=0)
    starts, stops = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    width = stops - starts
    if width.size and int(width.max()) >= 19:
        return None
    feeds = np.flatnonzero(raw == 10)
    num_lines = feeds.size + (raw[-1] != 10)
    line = np.searchsorted(feeds, starts)  # the line of each id
    lengths = np.bincount(line, minlength=num_lines)
    bad = lengths < min_length
    bad[line[raw[starts] == 48]] = True  # a leading zero (or the id 0)
    if bad.any():
        return int(np.flatnonzero(bad)[0])
    # each id by Horner's rule, one digit position at a time (exact in int64;
    # memory per id, not per byte)
    ids = np.zeros(starts.size, dtype=np.int64)
    longer = np.arange(starts.size)
    for k in range(int(width.max()) if width.size else 0):
        longer = longer[width[longer] > k]
        ids[longer] = ids[longer] * 10 + (raw[starts[longer] + k] - 48)
    return ids, lengths.astype(np.int64)


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
