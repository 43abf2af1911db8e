"""MovieLens 100K with its side fields (genres, release year, user profiles, rating time)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from graphrec.data.dataset import SessionDataset
from graphrec.data.graph import _ptr
from graphrec.datasets.io import data_root, log
from graphrec.datasets.sequential import SPLITS, leave_one_out, sequences_dataset

#: the counts the files must give (GroupLens' release, unchanged)
EXPECTED = {"users": 943, "items": 1682, "interactions": 100_000, "valid": 943, "test": 943}
GENRES = 19  # u.item's genre flags (u.genre: "unknown", Action, ..., Western)
#: release-year buckets: value v + 1 for a year in [edge v, edge v + 1); 0 = no date
YEAR_EDGES = (1950, 1960, 1970, 1980, 1990, 1995, 1996, 1997, 1998)
#: age buckets of MovieLens 1M's ``users.dat``: under 18, 18-24, 25-34, 35-44,
#: 45-49, 50-55, 56 and over (values 1 .. 7)
AGE_EDGES = (18, 25, 35, 45, 50, 56)
GENDERS = ("M", "F")


def _lines(path: Path, fields: int, sep: str, encoding: str) -> list[list[str]]:
    """The lines of a GroupLens file, split, each with ``fields`` fields (else an
    error naming the file and line)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"missing {path}: MovieLens 100K (see datasets/README.md); point the data root "
            "at a folder that has ml-100k/ (argument `root`, or $GRAPHREC_DATA)"
        )
    try:
        text = path.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not {encoding} text ({e.reason} at byte {e.start})") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(sep)
        if len(parts) != fields:
            raise ValueError(f"{path}, line {lineno}: expected {fields} fields, got {len(parts)}")
        rows.append(parts)
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    return rows


def _integers(path: Path, rows: list[list[str]], column: int, what: str) -> np.ndarray:
    out = np.empty(len(rows), dtype=np.int64)
    for n, row in enumerate(rows):
        token = row[column].strip()
        if not token.isdigit():
            raise ValueError(f"{path}, line {n + 1}: {what} {token!r} is not an integer")
        out[n] = int(token)
    return out


def read_ratings(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(user, item, unix_time)`` of ``u.data`` (tab separated), in file order."""
    rows = _lines(path, 4, "\t", "ascii")
    return (
        _integers(path, rows, 0, "user id"),
        _integers(path, rows, 1, "item id"),
        _integers(path, rows, 3, "time"),
    )


def item_fields(path: Path, item_ids: np.ndarray) -> dict[str, Tensor]:
    """``{"genre": [I + 1, W], "year": [I + 1]}`` for the compact items
    (``item_ids[i]`` the file id of compact item ``i``) from ``u.item`` (Latin-1).

    A movie's genres are its set flags (value = flag index + 1, so "unknown" is
    the genre 1, distinct from "no value" 0), left-aligned and padded with 0;
    its year bucket comes from its release date (:data:`YEAR_EDGES`).
    """
    rows = _lines(path, 5 + GENRES, "|", "latin-1")
    ids = _integers(path, rows, 0, "item id")
    where = {int(i): n for n, i in enumerate(ids)}
    missing = [int(i) for i in item_ids[1:] if int(i) not in where]
    if missing:
        raise ValueError(f"{path}: no line for the rated item(s) {missing[:10]}")
    genres = np.zeros((len(item_ids), GENRES), dtype=np.int64)
    year = np.zeros(len(item_ids), dtype=np.int64)
    for compact, item in enumerate(item_ids[1:], start=1):
        n = where[int(item)]
        row = rows[n]
        flags = row[5:]
        if any(f not in ("0", "1") for f in flags):
            raise ValueError(f"{path}, line {n + 1}: genre flags must be 0 or 1")
        values = [g + 1 for g, f in enumerate(flags) if f == "1"]
        genres[compact, : len(values)] = values
        date = row[2].strip()
        if date:
            try:
                released = datetime.strptime(date, "%d-%b-%Y").year
            except ValueError:
                raise ValueError(
                    f"{path}, line {n + 1}: release date {date!r} is not like 01-Jan-1995"
                ) from None
            year[compact] = int(np.searchsorted(YEAR_EDGES, released, side="right")) + 1
    width = max(1, int((genres > 0).sum(1).max()))
    return {"genre": torch.from_numpy(genres[:, :width].copy()), "year": torch.from_numpy(year)}


def user_fields(path: Path, user_ids: np.ndarray, occupations: list[str]) -> dict[str, Tensor]:
    """``{"age", "gender", "occupation"}`` (each ``[U + 1]``) from ``u.user``."""
    rows = _lines(path, 5, "|", "latin-1")
    ids = _integers(path, rows, 0, "user id")
    ages = _integers(path, rows, 1, "age")
    where = {int(i): n for n, i in enumerate(ids)}
    missing = [int(u) for u in user_ids[1:] if int(u) not in where]
    if missing:
        raise ValueError(f"{path}: no line for the user(s) {missing[:10]}")
    occupation_id = {name: k + 1 for k, name in enumerate(occupations)}
    out = {k: np.zeros(len(user_ids), dtype=np.int64) for k in ("age", "gender", "occupation")}
    for compact, user in enumerate(user_ids[1:], start=1):
        n = where[int(user)]
        _, _, gender, occupation, _ = rows[n]
        if gender not in GENDERS:
            raise ValueError(f"{path}, line {n + 1}: gender {gender!r} is not M or F")
        if occupation not in occupation_id:
            raise ValueError(
                f"{path}, line {n + 1}: occupation {occupation!r} is not in u.occupation"
            )
        out["age"][compact] = int(np.searchsorted(AGE_EDGES, ages[n], side="right")) + 1
        out["gender"][compact] = GENDERS.index(gender) + 1
        out["occupation"][compact] = occupation_id[occupation]
    return {k: torch.from_numpy(v) for k, v in out.items()}


def time_context(unix_time: Tensor) -> dict[str, Tensor]:
    """``{"hour": 1 .. 24, "weekday": 1 .. 7}`` (Monday = 1) of Unix times, in UTC."""
    hour = torch.div(unix_time, 3600, rounding_mode="floor") % 24 + 1
    # 1970-01-01 was a Thursday (weekday 4)
    weekday = (torch.div(unix_time, 86400, rounding_mode="floor") + 3) % 7 + 1
    return {"hour": hour, "weekday": weekday}


def load_movielens(
    root: str | os.PathLike | None = None,
    split: str = "train",
    max_length: int | None = 50,
    history_length: int = 0,
    valid: bool = True,
    weighting: str = "binary",
    check_counts: bool = True,
) -> SessionDataset:
    r"""MovieLens 100K as user sequences, with leave-one-out and side fields.

    Reads ``<root>/ml-100k/`` (GroupLens' files, unchanged). Every rating is an
    interaction (implicit feedback). A user's sequence is its ratings sorted
    by time, same-second ties in file order (a stable sort: 50,561 pairs of
    consecutive ratings share a second). Leave-one-out
    (:func:`~graphrec.datasets.sequential.leave_one_out`): the last rating
    is the test target, the second-to-last the validation target, 943 each.

    Side fields (0 = unknown everywhere):

    - ``item_features``: ``genre`` (multi-valued: the movie's genre flags,
      values 1 .. 19 in ``u.genre`` order) and ``year`` (release-year bucket,
      :data:`YEAR_EDGES`: before 1950, the 1950s .. 1980s, 1990-94, then 1995,
      1996, 1997, 1998).
    - ``user_features``: ``age`` (MovieLens 1M's buckets, :data:`AGE_EDGES`),
      ``gender`` (M = 1, F = 2), ``occupation`` (``u.occupation`` order, 1 .. 21).
    - ``context``: ``hour`` (1 .. 24) and ``weekday`` (Monday = 1 .. 7) of the
      sample's target rating, in UTC.

    Args: as :func:`~graphrec.datasets.load_sequential`, and ``check_counts``
    (compare the counts with :data:`EXPECTED`; off only for a sample of the
    files).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: a malformed line (named), or counts other than
            :data:`EXPECTED`.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = data_root(root) / "ml-100k"
    user_raw, item_raw, unix_time = read_ratings(folder / "u.data")
    occupations = [row[0] for row in _lines(folder / "u.occupation", 1, "|", "latin-1")]
    order = np.lexsort((unix_time, user_raw))  # by user, then time; ties in file order
    user_raw, item_raw, unix_time = user_raw[order], item_raw[order], unix_time[order]
    user_ids, user = np.unique(user_raw, return_inverse=True)
    item_ids, item = np.unique(item_raw, return_inverse=True)
    user_ids, item_ids = np.concatenate([[0], user_ids]), np.concatenate([[0], item_ids])
    user, item = torch.from_numpy(user + 1), torch.from_numpy(item + 1)
    num_users, num_items = len(user_ids) - 1, len(item_ids) - 1
    # the context of each sample is its target's: the same samples, in the same order,
    # as sequences_dataset's leave-one-out (the interactions are sorted by user already)
    ptr = _ptr(torch.bincount(user, minlength=num_users + 1)[1:])
    sample_sequence, prefix_length, _ = leave_one_out(ptr, split, valid)
    target_time = torch.from_numpy(unix_time)[ptr[:-1][sample_sequence] + prefix_length]
    dataset = sequences_dataset(
        user, item, num_users, num_items, split, valid=valid, weighting=weighting,
        max_length=max_length, history_length=history_length,
        item_ids=torch.from_numpy(item_ids), name=f"ml-100k/{split}",
        item_features=item_fields(folder / "u.item", item_ids),
        user_features=user_fields(folder / "u.user", user_ids, occupations),
        context=time_context(target_time),
        context_sizes={"hour": 24, "weekday": 7},
    )  # fmt: skip
    counts = {"users": num_users, "items": num_items, "interactions": item.numel()}
    counts[split] = len(dataset)
    wrong = {k: (v, EXPECTED[k]) for k, v in counts.items() if k in EXPECTED and v != EXPECTED[k]}
    if wrong and check_counts:
        raise ValueError(f"{folder}: unexpected counts (got, expected): {wrong}")
    if not torch.equal(dataset.y, item[ptr[:-1][sample_sequence] + prefix_length]):
        raise AssertionError("ml-100k: the contexts are not aligned with the samples")
    log.info("ml-100k/%s: %d samples, %d users, %d items", split, len(dataset), num_users,
             num_items)  # fmt: skip
    return dataset


def utc_hour_weekday(unix_time: int) -> tuple[int, int]:
    """The ``(hour, weekday)`` context values of one Unix time (for ``recommend``)."""
    t = datetime.fromtimestamp(unix_time, tz=timezone.utc)
    return t.hour + 1, t.isoweekday()
