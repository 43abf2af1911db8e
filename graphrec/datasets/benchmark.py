"""The standard session-based benchmarks (Diginetica, YooChoose 1/64 and 1/4)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from graphrec.data.dataset import FORMAT_VERSION, SessionDataset, _segments
from graphrec.data.graph import _ptr
from graphrec.datasets.io import data_root, log, read_sessions, sha256
from graphrec.serialization import UnsafeFileError, safe_torch_load

BENCHMARKS = ("diginetica", "yoochoose1_64", "yoochoose1_4")
SPLITS = ("train", "valid", "test")
VALID_MODES = ("last", "random")

_HOW_TO_GET = (
    "Produce it with `graphrec preprocess {raw}` from the raw log (see datasets/README.md for "
    "where to obtain it), or point the data root at a folder that has it "
    "(argument `root`, or $GRAPHREC_DATA)."
)


def split_sessions(
    num_sessions: int, valid_fraction: float, valid_mode: str = "last", seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Indices of the training and validation sessions.

    ``valid_mode="last"`` takes the last ``int(num_sessions * valid_fraction)``
    sessions in file order (time order); ``"random"`` draws them with ``seed``.
    Both index lists keep file order.
    """
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must lie in [0, 1), got {valid_fraction}")
    if valid_mode not in VALID_MODES:
        raise ValueError(f"valid_mode must be one of {VALID_MODES}, got {valid_mode!r}")
    num_valid = int(num_sessions * valid_fraction)
    if valid_mode == "last":
        valid = torch.arange(num_sessions - num_valid, num_sessions)
    else:
        gen = torch.Generator().manual_seed(seed)
        valid = torch.randperm(num_sessions, generator=gen)[:num_valid].sort().values
    is_valid = torch.zeros(num_sessions, dtype=torch.bool)
    is_valid[valid] = True
    return torch.nonzero(~is_valid).view(-1), valid


def select_sessions(items: Tensor, ptr: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """The sessions ``index`` of a flat ``(items, ptr)`` collection."""
    pos, counts = _segments(ptr, index)
    return items[pos], _ptr(counts)


def session_rows(index: Tensor, num_sessions: int) -> Tensor:
    """LongTensor [num_sessions]: the row of every session among the selection
    ``index`` (:func:`select_sessions`), -1 where it is not selected."""
    rows = torch.full((num_sessions,), -1, dtype=torch.long)
    rows[index] = torch.arange(index.numel())
    return rows


def _vocabulary(train_items: Tensor, test_items: Tensor) -> tuple[Tensor, int]:
    """Original ids of the catalogue (train and test items, sorted; entry 0 = padding)."""
    train_ids = torch.unique(train_items)
    all_ids = torch.unique(torch.cat([train_ids, test_items]))
    item_ids = torch.cat([torch.zeros(1, dtype=torch.long), all_ids])
    return item_ids, all_ids.numel() - train_ids.numel()


def _remap(items: Tensor, item_ids: Tensor) -> Tensor:
    return torch.searchsorted(item_ids, items)


def load_benchmark(
    name: str,
    root: str | os.PathLike | None = None,
    split: str = "train",
    valid_fraction: float = 0.1,
    valid_mode: str = "last",
    seed: int = 0,
    weighting: str = "binary",
    max_length: int | None = None,
    history_length: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> SessionDataset:
    r"""Load a standard benchmark split as prefix-augmented session graphs.

    Reads ``<root>/<name>/train_sessions.txt`` and ``test_sessions.txt`` (one
    full session per line) and produces, for every session ``s`` of length
    ``n``, the samples ``(s[:-i], s[-i])`` for ``i = 1 .. n-1``, in that order.

    Item ids are remapped to ``1 .. num_items`` in increasing order of the
    original ids of the items that occur in either file (identity for
    Diginetica; 17,745 of the ids up to 37,483 for YooChoose 1/64, whose test
    file has 369 items that its 1/64 training subset never shows: they stay in
    the catalogue, as in the reference code). The dataset's
    :meth:`~SessionDataset.decode` maps ids back.

    Args:
        name (str): ``"diginetica"``, ``"yoochoose1_64"`` or ``"yoochoose1_4"``.
        root (str, optional): the data root (default: ``$GRAPHREC_DATA``, else
            ``./datasets``).
        split (str): ``"train"``, ``"valid"`` or ``"test"``. (default: ``"train"``)
        valid_fraction (float): share of the training sessions held out for
            validation; ``0`` disables it and ``"train"`` is the whole
            training file. (default: ``0.1``)
        valid_mode (str): ``"last"`` (the last sessions in file order, which
            is time order) or ``"random"``. (default: ``"last"``)
        seed (int): seed for ``valid_mode="random"``. (default: ``0``)
        weighting (str): edge weighting, see :func:`graphrec.data.session_graph`.
            (default: ``"binary"``)
        max_length (int, optional): keep only the most recent ``max_length``
            clicks of each input (default: whole prefixes).
        history_length (int): attach up to this many clicks cut off by
            ``max_length`` as the long-term history (sessions have no users
            here, so the history never leaves the session). (default: ``0``)
        cache (bool): store the built graphs under ``<root>/<name>/processed/``
            and reuse them while the source files are unchanged (checksums).
            A read-only root only logs that nothing was cached.
            (default: ``True``)
        cache_dir (str, optional): where to cache instead of
            ``<root>/<name>/processed/`` (for a shared, read-only data root).
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {BENCHMARKS}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "valid" and valid_fraction == 0:
        raise ValueError("split='valid' needs valid_fraction > 0")
    split_sessions(1, valid_fraction, valid_mode)  # validates the arguments
    folder = data_root(root) / name
    if not folder.is_dir():
        raw = "diginetica" if name == "diginetica" else "yoochoose"
        raise FileNotFoundError(
            f"benchmark folder not found: {folder}. " + _HOW_TO_GET.format(raw=raw)
        )
    for f in (folder / "train_sessions.txt", folder / "test_sessions.txt"):
        if not f.is_file():
            raise FileNotFoundError(f"missing {f}. " + _HOW_TO_GET.format(raw=name.split("1")[0]))
    return load_session_folder(
        folder,
        split=split,
        valid_fraction=valid_fraction,
        valid_mode=valid_mode,
        seed=seed,
        weighting=weighting,
        max_length=max_length,
        history_length=history_length,
        cache=cache,
        cache_dir=cache_dir,
        name=name,
    )


def load_session_folder(
    folder: str | os.PathLike,
    split: str = "train",
    valid_fraction: float = 0.1,
    valid_mode: str = "last",
    seed: int = 0,
    weighting: str = "binary",
    max_length: int | None = None,
    history_length: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> SessionDataset:
    """As :func:`load_benchmark`, for any folder holding ``train_sessions.txt``
    and ``test_sessions.txt`` (``name`` defaults to the folder's name)."""
    folder = Path(folder)
    name = name or folder.resolve().name
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "valid" and valid_fraction == 0:
        raise ValueError("split='valid' needs valid_fraction > 0")
    split_sessions(1, valid_fraction, valid_mode)  # validates the arguments
    train_file, test_file = folder / "train_sessions.txt", folder / "test_sessions.txt"
    for f in (train_file, test_file):
        if not f.is_file():
            raise FileNotFoundError(
                f"missing {f}: a sessions folder needs train_sessions.txt and test_sessions.txt"
            )

    tag = f"{split}-{valid_mode}{valid_fraction:g}-seed{seed}-{weighting}-len{max_length}"
    if valid_mode == "last":
        tag = f"{split}-last{valid_fraction:g}-{weighting}-len{max_length}"
    if history_length:
        tag += f"-hist{history_length}"
    cache_file = (Path(cache_dir) if cache_dir else folder / "processed") / f"{name}-{tag}.pt"
    checksums = {"train": sha256(train_file), "test": sha256(test_file)}
    dataset = read_cache(cache_file, checksums) if cache else None
    if dataset is not None:
        return dataset
    train_items, train_ptr = read_sessions(train_file)
    test_items, test_ptr = read_sessions(test_file)
    item_ids, num_test_only = _vocabulary(train_items, test_items)
    if num_test_only:
        log.info(
            "%s: %d item(s) of the test file never occur in training; they stay in the "
            "catalogue (as in the reference code) but cannot be learnt",
            name,
            num_test_only,
        )
    num_items = item_ids.numel() - 1
    if split == "test":
        items, ptr = _remap(test_items, item_ids), test_ptr
    else:
        train_idx, valid_idx = split_sessions(
            train_ptr.numel() - 1, valid_fraction, valid_mode, seed
        )
        chosen = train_idx if split == "train" else valid_idx
        items, ptr = select_sessions(_remap(train_items, item_ids), train_ptr, chosen)
    dataset = SessionDataset.from_sessions(
        items,
        ptr,
        num_items,
        weighting=weighting,
        max_length=max_length,
        history_length=history_length,
        item_ids=item_ids,
        name=f"{name}/{split}",
    )
    if cache:
        write_cache(cache_file, checksums, dataset)
    return dataset


def read_cache(cache_file: Path, checksums: dict[str, str]) -> SessionDataset | None:
    """The dataset cached in ``cache_file`` if it was built from these sources, else ``None``.

    The file is a torch archive (a zip) whose tensors are memory-mapped, not
    read (:meth:`SessionDataset.load`): it opens in a fraction of a second
    whatever its size, and processes on one machine that open it share its
    pages. Every byte is first checked against the CRC-32 that the archive
    records for each of its entries (streamed, not mapped: the check does not
    grow the process's memory). A cache that fails it, cannot be read
    (truncated, corrupt, or holding anything but tensors and plain values) or
    is of another format is reported, naming the file, and rebuilt: it is
    never trusted, and never unpickled with anything but ``weights_only=True``.
    """
    if not cache_file.is_file():
        return None
    damaged = _damaged_entry(cache_file)
    if damaged:
        log.warning("processed cache %s is unreadable (%s): rebuilding it", cache_file, damaged)
        return None
    try:
        state = safe_torch_load(cache_file, mmap=True)
        fresh = state.get("dataset", {}).get("format_version") == FORMAT_VERSION
        if state.get("checksums") == checksums and fresh:
            return SessionDataset.from_state_dict(state["dataset"])
        why = "source files changed" if fresh else "older graphrec format"
    except UnsafeFileError as e:  # corrupt, truncated or hostile: never trusted
        log.warning("processed cache %s is unreadable (%s): rebuilding it", cache_file, e.reason)
        return None
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # readable, not a cache
        log.warning("processed cache %s is not a graphrec cache (%s): rebuilding it",
                    cache_file, type(e).__name__)  # fmt: skip
        return None
    log.info("%s: %s, rebuilding", cache_file, why)
    return None


def _damaged_entry(path: Path) -> str | None:
    """Why the zip archive ``path`` cannot be trusted (a damaged entry, an
    unreadable directory), or ``None`` when every entry matches its CRC-32."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return f"not a readable archive: {e}"
    return None if bad is None else f"{bad} does not match its checksum"


def write_cache(cache_file: Path, checksums: dict[str, str], dataset: SessionDataset) -> None:
    """Store ``dataset`` atomically; a read-only location only logs that nothing was cached."""
    # a name of this process's own: processes that build one file at once (on a
    # shared disk) never write into each other's; the last rename wins
    tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"checksums": checksums, "dataset": dataset.state_dict()}, tmp)
        tmp.replace(cache_file)
    except OSError as e:
        log.info("could not cache %s (%s); the dataset was built in memory", cache_file, e)
    finally:
        tmp.unlink(missing_ok=True)
