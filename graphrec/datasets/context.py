"""Per-click context fields of a user's own click log (a device, the hour of day).

:func:`~graphrec.datasets.from_click_log` takes ``context_cols`` (columns of the
log) and ``time_context`` (``hour``, ``weekday``: derived from the time column,
UTC). Every engine writes, beside the item ids, the value id of every written
click (0 = unknown):

- session mode: ``train_context.tsv`` and ``test_context.tsv``, one line per
  line of ``train_sessions.txt`` / ``test_sessions.txt``: a tab-separated column
  per field, the session's value ids in click order, separated by spaces;
- sequential mode: ``context.tsv``, one line per line of ``interactions.txt``;

each under a ``# field<TAB>field ...`` header, and ``fields.json``'s ``context``
entry names every value (id ``k`` is ``values[k - 1]``). A column's value ids
follow the sorted order of its values (as text, stripped; empty values are
unknown); ``hour`` is the hour + 1 and ``weekday`` the ISO weekday (Monday = 1).

:func:`read_context_files` gives them back to
:func:`~graphrec.datasets.load_click_log`, which gives every sample the context
of its target click: the moment of the request that the sample stands for.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from graphrec.datasets.sql import TIME_FIELDS
from graphrec.nn.field_embedding import is_field_name

#: the files that hold the context of a click-log folder
FILES = {"session": ("train_context.tsv", "test_context.tsv"), "sequential": ("context.tsv",)}


def check_options(
    context_cols: list[str] | None, time_context: list[str] | None, time: str | None,
    reserved: tuple[str | None, ...],
) -> tuple[list[str], list[str]]:  # fmt: skip
    """``(context_cols, time_context)`` as lists, checked: identifiers, no field
    twice, time fields that exist, and a time column for them."""
    columns = list(context_cols or [])
    times = list(time_context or [])
    for name in columns:
        if not isinstance(name, str) or not is_field_name(name):
            raise ValueError(
                f"context_cols: {name!r} cannot name a field: use letters, digits and _ "
                "(an identifier), e.g. rename the column"
            )
        if name in reserved:
            raise ValueError(
                f"context_cols: {name!r} is the log's session, item, time or user column"
            )
    for name in times:
        if name not in TIME_FIELDS:
            raise ValueError(f"time_context: unknown field {name!r}; one of {sorted(TIME_FIELDS)}")
    if times and time is None:
        raise ValueError("time_context needs the log's time column (time=, --time-col)")
    names = columns + times
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"context field(s) {twice} named twice (a column of the log may not be called like "
            "a time_context field)"
        )
    return columns, times


def column_ids(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """A log column's value ids (0 = unknown: empty, ``NaN``, ``"null"`` ...) and its
    values, sorted as text (id ``k`` is ``values[k - 1]``)."""
    from graphrec.datasets.clicklog import _MISSING

    text = column.astype(str).str.strip()
    missing = column.isna().to_numpy() | text.isin(_MISSING).to_numpy()
    values = sorted(set(text[~missing].tolist()))
    index = {v: k for k, v in enumerate(values, start=1)}
    codes = text.map(index).fillna(0).to_numpy(dtype=np.int64, copy=True)
    codes[missing] = 0
    return codes, values


def time_ids(seconds: np.ndarray, name: str) -> np.ndarray:
    """Value ids of time field ``name`` (``hour``: hour + 1; ``weekday``: ISO) in UTC:
    :func:`graphrec.datasets.movielens.time_context` of the whole seconds, as
    :func:`graphrec.datasets.sql.time_field_sql` computes them."""
    from graphrec.datasets.movielens import time_context

    whole = torch.from_numpy(np.floor(seconds).astype(np.int64))
    return time_context(whole)[name].numpy()


def time_entry(name: str) -> dict[str, Any]:
    return {"source": "time", "values": TIME_FIELDS[name][1]}


def write_lines(path: Path, names: list[str], lines) -> None:
    """A context file: the header, then ``lines`` (strings without the newline)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("# " + "\t".join(names) + "\n")
        for line in lines:
            f.write(line + "\n")


def session_lines(ids: dict[str, np.ndarray], sessions_rows: list[np.ndarray]):
    """One line per session: per field, the value ids of its clicks (raw rows)."""
    for rows in sessions_rows:
        yield "\t".join(" ".join(map(str, ids[n][rows].tolist())) for n in ids)


def entry(fields: dict[str, dict], zeros: dict[str, int], clicks: int) -> dict[str, Any]:
    """``fields.json``'s ``context`` entry (a warning names the fields that are unknown
    for every written click: no model can learn from them)."""
    from graphrec.datasets.io import log

    blank = [n for n, z in zeros.items() if clicks and z == clicks]
    if blank:
        log.warning(
            "context field(s) %s: no written click has a value (all empty); models leave them out",
            blank,
        )
    return {
        "source": "the click log",
        "fields": fields,
        "stats": {"clicks": clicks, "clicks_with_unknown_value": zeros},
    }


def add_entry(out: Path, value: dict[str, Any]) -> None:
    """Put the ``context`` entry into ``out/fields.json`` (other entries kept)."""
    path = out / "fields.json"
    entries = json.loads(path.read_text()) if path.is_file() else {}
    entries["context"] = value
    path.write_text(json.dumps(entries, indent=2) + "\n")


def write_from_engine(engine, out: Path, mode: str, columns: list[str], times: list[str]) -> None:
    """The context files of an SQL engine (DuckDB's :class:`~graphrec.datasets.duck.Engine`
    or Spark's runner) after the protocol and :func:`~graphrec.datasets.sql.context_script`."""
    from graphrec.datasets import sql

    names = columns + times
    counts = {n: 0 for n in names}
    clicks = 0
    for part, file in zip(
        ("train", "test") if mode == "session" else ("all",), FILES[mode], strict=True
    ):
        # joined once: the file and the counts read the same table
        engine.materialize(f"ctx_{part}", sql.context_clicks(mode, part, names))
        query = f"SELECT * FROM ctx_{part}"
        engine.write_context(query, out / file, names, grouped=mode == "session")
        zeros = ", ".join(f"sum(CASE WHEN f_{n} = 0 THEN 1 ELSE 0 END) AS f_{n}" for n in names)
        row = engine.one(f"SELECT count(*) AS clicks, {zeros} FROM ({query}) AS q")
        clicks += int(row["clicks"] or 0)
        for n in names:
            counts[n] += int(row[f"f_{n}"] or 0)
    fields = {}
    for n in columns:
        values = [v for (v,) in engine.rows(f"SELECT v FROM ctx_values_{n} ORDER BY id")]
        fields[n] = {"source": "column", "values": [str(v) for v in values]}
    fields.update({n: time_entry(n) for n in times})
    add_entry(out, entry(fields, counts, clicks))


def read_context_files(folder: Path, mode: str, lengths: list[Tensor]) -> dict[str, Any] | None:
    """The per-click context of a folder: ``{"values": {field: LongTensor [clicks]},
    "sizes": {field: n}, "labels": {field: [None, value of 1, ...]}}`` with the
    clicks of the files in order (session mode: train then test), or ``None``
    when the folder has none. ``lengths``: the clicks of each line of every file
    (session mode: the sessions' lengths; sequential: ones), checked against the
    files."""
    meta_path = folder / "fields.json"
    entry = json.loads(meta_path.read_text()).get("context") if meta_path.is_file() else None
    if not entry:
        return None
    names = list(entry["fields"])
    sizes = {n: len(entry["fields"][n]["values"]) for n in names}
    labels = {n: [None, *entry["fields"][n]["values"]] for n in names}
    columns: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for file, expected in zip(FILES[mode], lengths, strict=True):
        path = folder / file
        for n, ids in _read_file(path, names, sizes, expected.numpy()).items():
            columns[n].append(ids)
    values = {
        n: torch.from_numpy(np.concatenate(c) if c else np.zeros(0, np.int64))
        for n, c in columns.items()
    }
    return {"values": values, "sizes": sizes, "labels": labels}


def _read_file(path: Path, names: list[str], sizes: dict[str, int], want: np.ndarray):
    """One context file's value ids per field, checked (vectorised: no loop per line)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (fields.json lists context fields)")
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n")
    if header != "# " + "\t".join(names):
        raise ValueError(f"{path}, line 1: expected the header '# {chr(9).join(names)}'")
    try:
        frame = pd.read_csv(
            path, sep="\t", header=None, skiprows=1, dtype=str, keep_default_na=False,
            quoting=3, skip_blank_lines=False,
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame(columns=range(len(names)), dtype=str)
    except pd.errors.ParserError as e:
        raise ValueError(f"{path}: not {len(names)} tab-separated columns ({e})") from None
    if frame.shape[1] != len(names):
        raise ValueError(f"{path}, line 2: {frame.shape[1]} columns for {names}")
    if len(frame) != len(want):
        raise ValueError(f"{path}: {len(frame)} lines where {len(want)} are needed")
    out = {}
    for k, n in enumerate(names):
        cells = frame[k].str.strip()
        counts = np.where(cells == "", 0, cells.str.count(" ") + 1)
        bad = np.flatnonzero(counts != want)
        if len(bad):
            line = int(bad[0]) + 2
            raise ValueError(
                f"{path}, line {line}: column {n!r}: {counts[bad[0]]} values for "
                f"{want[bad[0]]} clicks"
            )
        text = " ".join(cells.tolist())
        ids = None
        if re.search(r"[^0-9 \-]", text) is None:
            with warnings.catch_warnings():  # numpy warns (or raises) on unparsed text
                warnings.simplefilter("error", DeprecationWarning)
                try:
                    ids = np.fromstring(text, dtype=np.int64, sep=" ")
                except (DeprecationWarning, ValueError):
                    ids = None
        if ids is None or len(ids) != int(want.sum()):
            bad = (
                i for i, c in enumerate(cells) if not re.fullmatch(r"(-?[0-9]+( -?[0-9]+)*)?", c)
            )
            line = next(bad, 0)
            raise ValueError(
                f"{path}, line {line + 2}: column {n!r}: {cells.iloc[line]!r} is not value ids"
            ) from None
        if len(ids) and (ids.min() < 0 or ids.max() > sizes[n]):
            row = np.repeat(np.arange(len(want)), want)[
                np.flatnonzero((ids < 0) | (ids > sizes[n]))[0]
            ]
            raise ValueError(f"{path}, line {row + 2}: column {n!r}: a value outside 0..{sizes[n]}")
        out[n] = ids
    return out
