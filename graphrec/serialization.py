"""Reading torch files (checkpoints, processed caches) without running code from them."""

from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch


class UnsafeFileError(ValueError):
    """A torch file that graphrec will not read: it needs more than tensors and plain
    values (code could run while unpickling it), or it is not a torch file at all."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def safe_torch_load(path: str | os.PathLike, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """``torch.load(path, weights_only=True)``, with graphrec's own messages.

    With ``mmap=True`` the tensors map the file instead of being read into
    memory (``torch.load(..., mmap=True)``): opening costs next to nothing,
    pages are read when touched and shared by every process mapping the file.

    torch's warnings while reading (a pickle protocol it did not write, ...)
    are not passed on, and its advice to retry with ``weights_only=False`` is
    never repeated: that would run whatever the file holds.

    Raises:
        FileNotFoundError: no such file.
        UnsafeFileError: the file refers to Python objects other than tensors
            and plain values (``os.system``, a class, ...), or is not a torch
            file (garbage, a truncated or corrupt archive, a plain pickle);
            the message names the file and what was found.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        text = str(e)
        found = re.search(r"GLOBAL (\S+)", text, re.IGNORECASE)
        if found:
            raise UnsafeFileError(
                path,
                f"refused: not a weights-only file. It refers to the Python object "
                f"{found.group(1).rstrip(':,')!r}, which could run code when unpickled; "
                "graphrec reads only tensors and plain values and will not load it",
            ) from None
        with open(path, "rb") as f:
            head = f.read(4)
        if head[:1] == b"\x80":  # a bare pickle (protocol 2 or later), not torch's archive
            raise UnsafeFileError(
                path,
                "refused: a bare pickle, not a weights-only torch file; graphrec "
                "will not unpickle it (that could run code)",
            ) from None
        if head != b"PK\x03\x04":
            raise UnsafeFileError(path, "not a torch file") from None
        first = text.strip().splitlines()[-1][:160] if text.strip() else type(e).__name__
        raise UnsafeFileError(path, f"refused: not a weights-only torch file ({first})") from None
    except Exception as e:  # truncated or corrupt archives fail in many ways inside torch.load
        with open(path, "rb") as f:
            head = f.read(4)
        if head != b"PK\x03\x04" and head[:1] != b"\x80":
            raise UnsafeFileError(path, "not a torch file") from None
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise UnsafeFileError(
            path, f"cannot be read as a torch file (truncated or corrupt): {first}"
        ) from None
