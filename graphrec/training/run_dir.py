"""Run directories: never overwritten by accident, never shared by two trainings at once."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: msvcrt's byte-range lock
    fcntl = None
    import msvcrt

#: the files a training writes; a folder holding one of them holds a run
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "test_metrics.json")
#: written too, but alone (a run stopped before its first checkpoint) it loses nothing
_OTHER_FILES = ("config.json", "curves.png")
LOCK_FILE = ".lock"


class RunDirectoryError(ValueError):
    """A run directory that cannot be used: it holds a run, or another training uses it."""


def describe_run(run_dir: str | os.PathLike) -> str | None:
    """What a run directory holds (``None`` when it holds no run), for messages."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_FILES if (run_dir / name).is_file()]
    if (run_dir / "refit").is_dir() and describe_run(run_dir / "refit"):
        found.append("refit/")
    if not found:
        return None
    text = ", ".join(found)
    records = _read_records(run_dir / "metrics.jsonl")
    if records:
        last = records[-1]
        text += f"; {len(records)} epoch(s) logged, best epoch {last.get('best_epoch')}"
    return text


def _read_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return out


def prepare_run_dir(
    run_dir: str | os.PathLike, *, resume: bool = False, overwrite: bool = False
) -> Path:
    """Create ``run_dir`` (checked writable) for a training, refusing to lose a run.

    Args:
        run_dir: the folder.
        resume (bool): the training continues the run in it (``last.pt`` must exist).
        overwrite (bool): replace the run it holds: graphrec's own files of it
            (checkpoints, logs, ``refit/``) are deleted; other files stay.

    Raises:
        RunDirectoryError: the folder holds a run and neither ``resume`` nor
            ``overwrite`` is set; or ``resume`` is set and there is nothing to
            resume; or the path cannot be created or written.
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise RunDirectoryError("resume and overwrite exclude each other")
    make_run_dir(run_dir)
    held = describe_run(run_dir)
    if resume:
        if not (run_dir / "last.pt").is_file():
            raise RunDirectoryError(
                f"nothing to resume in {run_dir}: it has no last.pt"
                + (f" (it holds {held})" if held else "")
            )
        return run_dir
    if held is None:
        return run_dir
    if not overwrite:
        raise RunDirectoryError(
            f"{run_dir} already holds a run ({held}). Continue it with --resume "
            "(resume=True), replace it with --overwrite (overwrite=True), or choose "
            "another --run-dir"
        )
    clear_run(run_dir)
    return run_dir


def make_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` and check that it can be written, with a clear error."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise RunDirectoryError(
            f"run directory {run_dir}: a file of that name exists (not a folder)"
        ) from None
    except OSError as e:
        why = e.strerror or str(e)
        if isinstance(e, NotADirectoryError):
            why = "a part of the path is a file, not a folder"
        raise RunDirectoryError(
            f"run directory {run_dir}: cannot create or write it ({why})"
        ) from None


def clear_run(run_dir: Path) -> None:
    """Delete the files of a run (and of its ``refit/``), nothing else."""
    for name in (*RUN_FILES, *_OTHER_FILES, "last.pt.tmp", "best.pt.tmp"):
        (run_dir / name).unlink(missing_ok=True)
    refit = run_dir / "refit"
    if refit.is_dir():
        clear_run(refit)
        try:
            refit.rmdir()
        except OSError:
            pass  # it holds other files: they stay


#: run directories this process holds, with how many holders (the lock is re-entrant)
_HELD: dict[str, tuple[Any, int]] = {}


class RunLock:
    """An exclusive lock on a run directory, held while a training uses it.

    Another process (or machine sharing the folder over a file system with
    locks) that takes the same lock fails at once with a
    :class:`RunDirectoryError` naming the holder. Within one process the lock
    is re-entrant: the command line holds it around a training whose
    :class:`~graphrec.training.Trainer` takes it again.
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.key = str(self.run_dir.resolve())

    def __enter__(self) -> RunLock:
        held = _HELD.get(self.key)
        if held is not None:
            _HELD[self.key] = (held[0], held[1] + 1)
            return self
        make_run_dir(self.run_dir)
        path = self.run_dir / LOCK_FILE
        handle = open(path, "a+")  # held until __exit__
        try:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:  # pragma: no cover
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunDirectoryError(
                f"{self.run_dir} is in use by another training ({holder}); wait for it to "
                "finish or choose another --run-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n")
        handle.flush()
        _HELD[self.key] = (handle, 1)
        return self

    def __exit__(self, *exc: object) -> None:
        handle, count = _HELD[self.key]
        if count > 1:
            _HELD[self.key] = (handle, count - 1)
            return
        del _HELD[self.key]
        try:
            handle.seek(0)
            handle.truncate()
        finally:
            handle.close()  # closing releases the lock
