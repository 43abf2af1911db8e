"""A user's own click log -> a processed folder that ``load_dataset(path)`` reads.

:func:`from_click_log` reads a CSV, TSV or Parquet file, or a pandas
DataFrame, applies the benchmark protocol with every choice an explicit
option (the defaults are the SR-GNN reference's), and writes a folder::

    meta.json               what was done: options, counts, id types
    items.tsv               compact id -> the log's own item id
    users.tsv               compact id -> the log's own user id (with users)
    train_sessions.txt      session mode: one session per line (compact ids)
    test_sessions.txt
    train_session_users.txt session mode with users: the user of each line
    test_session_users.txt
    interactions.txt        sequential mode: "user item" per line, time order

:func:`load_click_log` (and :func:`graphrec.datasets.load_dataset` given the
folder's path) turns it into the ``train``/``valid``/``test`` splits.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from graphrec.data import SessionDataset
from graphrec.data.dataset import _feature_tables as checked_tables
from graphrec.data.dataset import _positions, prefix_samples
from graphrec.data.graph import _ptr
from graphrec.datasets.benchmark import read_cache, session_rows, split_sessions, write_cache
from graphrec.datasets.features import read_feature_files
from graphrec.datasets.io import decode, log, read_sessions, sha256, write_sessions
from graphrec.datasets.preprocess import standard_protocol
from graphrec.datasets.sequential import leave_one_out, read_interactions, sequences_dataset

FORMAT = "graphrec-click-log"
VERSION = 1
MODES = ("session", "sequential")
DUPLICATES = ("keep", "drop", "error")
UNSORTED = ("sort", "error")
_CANONICAL_INT = re.compile(r"(?:0|-?[1-9][0-9]{0,17})")
_MISSING = {"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"}


def _read(
    source: str | os.PathLike | pd.DataFrame, sep: str | None, encoding: str = "utf-8"
) -> tuple[pd.DataFrame, str, int, str | None]:
    """The log as a frame, a name for messages, the line of its first row, and the
    separator of a text file."""
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "DataFrame", 0, None
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"click log not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path).reset_index(drop=True), str(path), 0, None
        except ImportError:
            raise ImportError(
                f'{path}: reading Parquet needs pyarrow: pip install "graphrec[parquet]"'
            ) from None
    sep, _ = text_layout(path, sep, encoding)
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        frame = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=True,
            encoding=codec,
        )  # fmt: skip
    except UnicodeDecodeError:
        decode(path.read_bytes(), path, encoding)  # raises, naming the line and the byte
        raise
    except pd.errors.ParserError as e:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(e))
        if found:
            expected, line, saw = found.groups()
            raise ValueError(
                f"{path}, line {line}: {saw} fields where the header has {expected} "
                f"(separator {sep!r})"
            ) from None
        raise ValueError(f"{path}: cannot be read as {sep!r}-separated text ({e})") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path}: the file is empty (a header line and rows are needed)") from None
    return frame, str(path), 2, sep  # row 0 is on line 2, after the header


def text_layout(path: Path, sep: str | None, encoding: str) -> tuple[str, str]:
    """The separator of a text log (given, or guessed from its header) and its header line."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if not head.strip():
        raise ValueError(f"{path}: the file is empty (a header line and rows are needed)")
    first = decode(head.split(b"\n", 1)[0], path, encoding).strip("\r")
    if sep is None:
        if path.suffix.lower() in (".tsv", ".tab"):
            sep = "\t"
        else:
            count, sep = max((first.count(c), c) for c in (",", ";", "\t", "|"))
            if count == 0:
                raise ValueError(
                    f"{path}, line 1: the header {first[:80]!r} holds none of the separators "
                    "',' ';' tab '|' (a click log has at least an item column and a session "
                    "or user column); pass sep= (--sep)"
                )
    return sep, first


def _line_hint(label: str, line: int, sep: str | None, encoding: str) -> str:
    """Why a text line lacks a value: fewer fields than the header, other separators."""
    if sep is None:
        return ""
    try:
        with open(label, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if number == line:
                    text = raw.decode(encoding, errors="replace").rstrip("\r\n")
                    break
            else:
                return ""
    except OSError:
        return ""
    fields = text.count(sep) + 1
    others = [f"{text.count(c)} {c!r}" for c in (",", ";", "\t", "|") if c != sep and c in text]
    hint = f"; the line has {fields} field(s) separated by {sep!r}"
    if others:
        hint += f" but also {', '.join(others)}: mixed separators?"
    return hint


class _Where:
    """Where row ``r`` of the log is, for messages: its file and line (or DataFrame row)."""

    def __init__(self, name: str, first_line: int, sep: str | None, encoding: str) -> None:
        self.name, self.first_line, self.sep, self.encoding = name, first_line, sep, encoding

    def __call__(self, row: int) -> str:
        if self.first_line:
            return f"{self.name}, line {row + self.first_line}"
        return f"{self.name}, row {row}"

    def empty(self, row: int, label: str, value: Any) -> str:
        """The message of a row whose column ``label`` holds no value."""
        text = f"{self(row)}: column {label!r} has no value ({value!r})"
        if self.first_line:
            text += _line_hint(self.name, row + self.first_line, self.sep, self.encoding)
        return text


def _missing(column: pd.Series) -> np.ndarray:
    if column.dtype == object or pd.api.types.is_string_dtype(column):
        text = column.astype(str).str.strip()
        return (column.isna() | text.isin(_MISSING)).to_numpy()
    return column.isna().to_numpy()


_INT64_MAX = np.iinfo(np.int64).max


def _ids(
    column: pd.Series, label: str, where: _Where, text_ids: bool = False
) -> tuple[pd.Series, str]:
    """A column of ids as int64 when every value is an integer, else as strings
    (always as strings with ``text_ids``)."""
    bad = _missing(column)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(where.empty(row, label, column.iloc[row]))
    if not text_ids and pd.api.types.is_integer_dtype(column):
        return column.astype(np.int64), "int"
    if not text_ids and pd.api.types.is_float_dtype(column):
        values = column.to_numpy()
        frac = values != np.round(values)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise ValueError(f"{where(row)}: column {label!r} holds {values[row]!r}, not an id")
        return column.astype(np.int64), "int"
    text = column.astype(str).str.strip()
    if text.str.contains(r"[\t\r\n]", regex=True).any():
        row = int(np.flatnonzero(text.str.contains(r"[\t\r\n]", regex=True).to_numpy())[0])
        raise ValueError(f"{where(row)}: column {label!r} holds a tab or a line break")
    if text_ids:
        return text, "str"
    if text.str.fullmatch(_CANONICAL_INT.pattern).all():
        return text.astype(np.int64), "int"
    if text.str.fullmatch(r"0|-?[1-9][0-9]*").all():
        # integers, some of 19 digits or more: int64 if they fit, never silently text
        long = np.flatnonzero(text.str.len().to_numpy() > 18)
        for row in long:
            if abs(int(text.iloc[row])) > _INT64_MAX:
                raise ValueError(
                    f"{where(int(row))}: column {label!r}: the integer id {text.iloc[row]} "
                    "does not fit in 64 bits, while every other id of the column is an "
                    "integer; pass text_ids=True (--text-ids) to keep the ids as text"
                )
        return text.astype(np.int64), "int"
    return text, "str"


#: an ISO 8601 time of day followed by a UTC offset (``...T10:00:00+02:00``, ``...Z``)
_TIME_ZONE = (
    r".*[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)? ?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
)


def _times(column: pd.Series, label: str, where, time_format: str | None, unit: str) -> pd.Series:
    """Seconds since the epoch (float) of every row; unparseable values are errors.

    Numbers are ``unit`` since the epoch; text is ISO 8601 (or ``time_format``).
    Times without a UTC offset are taken as UTC; a column that mixes numbers
    and text, or times with and without an offset, is refused (naming a line of
    each), since no single reading of it is right.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        stamp = column
    else:
        bad = _missing(column)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(where.empty(row, label, column.iloc[row]))
        numeric = pd.to_numeric(column, errors="coerce") if time_format is None else None
        if numeric is not None and not numeric.isna().any():
            scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
            return numeric.astype(np.float64) * scale
        if numeric is not None and numeric.notna().any():
            number = int(np.flatnonzero(numeric.notna().to_numpy())[0])
            other = int(np.flatnonzero(numeric.isna().to_numpy())[0])
            parsed = pd.to_datetime(column.iloc[other : other + 1], format="ISO8601",
                                    errors="coerce")  # fmt: skip
            if parsed.isna().all():
                raise ValueError(
                    f"{where(other)}: column {label!r}: cannot parse {column.iloc[other]!r} "
                    f"as a time (the column's other values are numbers: {unit} since the "
                    "epoch)"
                )
            raise ValueError(
                f"{label!r} mixes numbers ({where(number)}: {column.iloc[number]!r}) and "
                f"other times ({where(other)}: {column.iloc[other]!r}); use one format"
            )
        text = column.astype(str).str.strip()
        stamp = pd.to_datetime(text, format=time_format or "ISO8601", errors="coerce", utc=True)
        if stamp.isna().any():
            row = int(np.flatnonzero(stamp.isna().to_numpy())[0])
            expected = f"the format {time_format!r}" if time_format else "an ISO 8601 time"
            raise ValueError(
                f"{where(row)}: column {label!r}: cannot parse {column.iloc[row]!r} as "
                f"{expected} (pass time_format= / --time-format)"
            )
        if time_format is None:
            zoned = text.str.fullmatch(_TIME_ZONE).to_numpy()
            if zoned.any() and not zoned.all():
                a, b = int(np.flatnonzero(zoned)[0]), int(np.flatnonzero(~zoned)[0])
                raise ValueError(
                    f"{label!r} mixes times with a UTC offset ({where(a)}: {column.iloc[a]!r}) "
                    f"and without one ({where(b)}: {column.iloc[b]!r}); which zone the "
                    "latter are in cannot be guessed: give every time an offset, or none "
                    "(then all are UTC)"
                )
    if getattr(stamp.dt, "tz", None) is None:
        stamp = stamp.dt.tz_localize("UTC")
    return epoch_seconds(stamp)


def epoch_seconds(stamp: pd.Series) -> pd.Series:
    """Seconds since the epoch of UTC times: whole seconds plus the nanoseconds left over
    divided by 10^9, so that the value does not depend on the column's resolution
    (pandas keeps micro- or nanoseconds as the text needs) and any engine can compute it
    from the integer nanoseconds."""
    ns = stamp.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64").to_numpy()
    whole, rest = np.divmod(ns, 1_000_000_000)
    return pd.Series(whole.astype(np.float64) + rest / 1e9, index=stamp.index)


def from_click_log(
    source: str | os.PathLike | pd.DataFrame,
    out_dir: str | os.PathLike,
    *,
    session: str | None = "session_id",
    item: str = "item_id",
    time: str | None = "timestamp",
    user: str | None = None,
    sep: str | None = None,
    time_format: str | None = None,
    time_unit: str = "s",
    mode: str | None = None,
    min_item_support: int = 5,
    min_session_length: int = 2,
    test_days: float | None = 7,
    test_fraction: float | None = None,
    duplicates: str = "keep",
    unsorted: str = "sort",
    name: str | None = None,
    encoding: str = "utf-8",
    text_ids: bool = False,
    engine: str = "auto",
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    item_features: str | os.PathLike | pd.DataFrame | None = None,
    item_feature_cols: list[str] | None = None,
    user_features: str | os.PathLike | pd.DataFrame | None = None,
    user_feature_cols: list[str] | None = None,
    multi_valued: list[str] | None = None,
    value_sep: str = "|",
    context_cols: list[str] | None = None,
    time_context: list[str] | None = None,
) -> dict[str, Any]:
    r"""Preprocess a click log of one's own into a folder ``load_dataset`` reads.

    **Session mode** (a ``session`` column; the default) follows the SR-GNN
    reference protocol (see :mod:`graphrec.datasets.preprocess`), every step
    an option with the reference's value as default: clicks are ordered by
    ``time`` within each session (stable), a session is dated by its last
    click, sessions shorter than ``min_session_length`` are dropped, then
    clicks on items with fewer than ``min_item_support`` clicks, then the
    sessions left too short; the test split is the sessions dated after
    ``max date - test_days`` (or the most recent ``test_fraction`` of them);
    test clicks on items unseen in training are dropped. Validation is taken
    later, at load time, from the end of the training sessions.

    **Sequential mode** (``session=None``, or ``mode="sequential"``; needs
    ``user``) is the leave-one-out protocol of the user-sequential
    benchmarks: each user's items in ``time`` order (file order if
    ``time=None``), items with fewer than ``min_item_support`` interactions
    dropped; the last item of every user with at least 3 is the test target,
    the one before the validation target.

    **Side fields.** A product table (``item_features``) and a user profile
    table (``user_features``) are read and checked before the log is: an item
    listed twice with different values, a table without the id column, or a
    field column whose name is not an identifier is an error naming the file,
    line and column. An id of a table that the log never shows (or that the
    filters dropped) is counted and named in a warning; an item of the log
    without a row has unknown values (counted). The counts go to
    ``fields.json``.

    **Context fields** are per click: ``context_cols`` name columns of the log
    (a device, a country), ``time_context`` the fields that the time column
    gives (``hour``, ``weekday``, in UTC). Every written click keeps its value
    ids (``train_context.tsv`` ..., :mod:`graphrec.datasets.context`), and a
    sample loaded from the folder carries the context of its target click, as
    a request carries the context of its moment.

    Item and user ids may be of any type: integers stay integers, anything
    else (strings, ``"007"``) is kept as text. Compact ids follow their sorted
    order; ``items.tsv``/``users.tsv`` keep the mapping, models trained on the
    folder keep it in their checkpoints, and ``recommend`` speaks the log's
    own ids.

    Args:
        source: a ``.csv``/``.tsv``/``.parquet`` path, or a DataFrame.
        out_dir: the folder to write (created). Everything is written to a
            new folder beside it first; only then do its files replace those of
            ``out_dir`` (``meta.json`` last), so a failure leaves ``out_dir``
            as it was.
        session (str, optional): the session column (``None``: sequential mode).
        item (str): the item column.
        time (str, optional): the time column; ``None`` keeps file order
            (sequential mode only).
        user (str, optional): the user column; needed in sequential mode,
            optional in session mode (one user per session).
        sep (str, optional): the field separator of a text file (default: tab
            for ``.tsv``, else the most frequent of ``, ; tab |`` in the header).
        time_format (str, optional): a :func:`pandas.to_datetime` format;
            default: numbers (``time_unit`` since the epoch) or ISO 8601.
        time_unit (str): ``"s"``, ``"ms"``, ``"us"`` or ``"ns"`` for numeric
            times. (default: ``"s"``)
        mode (str, optional): ``"session"`` or ``"sequential"`` (default:
            session when ``session`` is given).
        min_item_support (int): (default: ``5``)
        min_session_length (int): session mode. (default: ``2``)
        test_days (float, optional): session mode. (default: ``7``)
        test_fraction (float, optional): session mode, instead of ``test_days``.
        duplicates (str): rows repeating the session (user), item and time of
            an earlier row: ``"keep"`` (the reference keeps them), ``"drop"``
            or ``"error"``. Their number is always reported. (default: ``"keep"``)
        unsorted (str): rows of a session (user) out of time order:
            ``"sort"`` (stable) or ``"error"``. Their number is always
            reported. (default: ``"sort"``)
        name (str, optional): the dataset's label (default: the folder's name).
        encoding (str): the text encoding of a CSV/TSV file (a UTF-8 byte-order
            mark is dropped). (default: ``"utf-8"``)
        text_ids (bool): keep every id (item, session, user) as text, even
            where all of a column's ids are integers. (default: ``False``)
        engine (str): ``"duckdb"`` (out of core: SQL over the file, spilling to
            disk under ``memory_limit``; needs ``graphrec[scale]``), ``"pandas"``
            (in memory), or ``"auto"``: DuckDB for a file when it is installed
            (and reads the encoding), else pandas. Both write the same files,
            byte for byte, and raise the same errors. A DataFrame is always
            preprocessed with pandas. (default: ``"auto"``)
        memory_limit (str, optional): DuckDB's memory limit, e.g. ``"8GB"``
            (default: a quarter of the machine's memory).
        threads (int, optional): DuckDB's threads (default: all CPUs).
        progress (bool): a progress bar per DuckDB stage. (default: ``False``)
        item_features: a product table (``.csv``/``.tsv``/``.parquet`` path, or a
            DataFrame): one row per item, its id in a column named like the
            log's ``item`` column, one column per side field (a brand, a
            category). The folder gets ``item_features.tsv`` and
            ``fields.json``; the datasets loaded from it carry
            ``item_features`` (value ids ``1 ..`` in sorted order of the values,
            0 = unknown), which ``build_model`` gives every model.
        item_feature_cols (list, optional): the field columns (default: every
            column but the id).
        user_features: a user profile table, the same way (needs ``user``).
        user_feature_cols (list, optional): its field columns.
        multi_valued (list, optional): columns (of either table) holding
            several values joined by ``value_sep`` (``"Action|Comedy"``).
        value_sep (str): (default: ``"|"``)
        context_cols (list, optional): context columns of the log, one value per
            click (empty = unknown); value ids ``1 ..`` in the sorted order of
            the values, named in ``fields.json``.
        time_context (list, optional): ``"hour"`` (value id = hour + 1) and/or
            ``"weekday"`` (ISO: Monday = 1) of each click's time, UTC.

    Returns:
        The counts of every step (also in ``meta.json``), and those of the side
        fields (``item_fields``, ``user_fields``, ``context_fields``: also in
        ``fields.json``).

    Raises:
        ValueError: a missing column, an empty id, an unparseable time, a
            duplicate or unsorted row under ``"error"``, a session with
            several users, or nothing left after the filters; the message
            names the file (or DataFrame), the line (or row) and the column.
    """
    mode = mode or ("session" if session is not None else "sequential")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
    if unsorted not in UNSORTED:
        raise ValueError(f"unsorted must be one of {UNSORTED}, got {unsorted!r}")
    if time_unit not in ("s", "ms", "us", "ns"):
        raise ValueError(f"time_unit must be s, ms, us or ns, got {time_unit!r}")
    if min_item_support < 1:
        raise ValueError(f"min_item_support must be >= 1, got {min_item_support}")
    if mode == "session":
        if session is None or time is None:
            raise ValueError("session mode needs a session column and a time column")
        if test_fraction is not None:
            test_days = None
    elif user is None:
        raise ValueError("sequential mode needs a user column (user=, --user-col)")
    options = _options(
        out_dir, name, mode, session, item, time, user,
        min_item_support=min_item_support, min_session_length=min_session_length,
        test_days=test_days, test_fraction=test_fraction, duplicates=duplicates,
        unsorted=unsorted, time_format=time_format, time_unit=time_unit,
    )  # fmt: skip
    from graphrec.datasets import context as ctx_files

    context_cols, time_context = ctx_files.check_options(
        context_cols, time_context, time, (session, item, time, user)
    )
    if context_cols or time_context:
        options["context"] = {"columns": context_cols, "time": time_context}
    tables = _feature_tables(
        item_features, item_feature_cols, user_features, user_feature_cols, multi_valued,
        value_sep, item, user, encoding, text_ids,
    )  # fmt: skip
    finish = None if not tables else functools.partial(_write_fields, tables)
    ids = tuple(c for c in (item, session if mode == "session" else None, user) if c)
    if _engine(engine, source, encoding, ids, time) == "duckdb":
        from graphrec.datasets.duck import click_log

        stats = click_log(
            Path(source), Path(out_dir), options, sep=sep, encoding=encoding,
            text_ids=text_ids, memory_limit=memory_limit, threads=threads, progress=progress,
            finish=finish, context=(context_cols, time_context),
        )  # fmt: skip
        return _with_field_stats(stats, Path(out_dir), tables)
    frame, label, first_line, sep = _read(source, sep, encoding)
    where = _Where(label, first_line, sep, encoding)
    group_col = session if mode == "session" else user
    need = [c for c in (group_col, item, time, user) if c is not None]
    missing = [c for c in dict.fromkeys(need) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{label}: missing column(s) {missing}; it has {list(frame.columns)} "
            "(name them with session=/item=/time=/user=, or --session-col etc.)"
        )
    missing = [c for c in context_cols if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{label}: missing context column(s) {missing}; it has {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError(f"{label}: no rows")
    stats: dict[str, Any] = {"rows": len(frame)}
    items, item_type = _ids(frame[item], item, where, text_ids)
    group, _ = _ids(frame[group_col], group_col, where, text_ids)
    users, user_type = (
        _ids(frame[user], user, where, text_ids) if user is not None else (None, None)
    )
    stamps = (
        _times(frame[time], time, where, time_format, time_unit)
        if time is not None
        else pd.Series(np.zeros(len(frame)))
    )
    clicks = pd.DataFrame(
        {"group": group, "item": items, "time": stamps, "row": np.arange(len(frame))}
    )
    # the context value ids of every row of the log
    context_ids: dict[str, np.ndarray] = {}
    context_fields: dict[str, dict] = {}
    for c in context_cols:
        context_ids[c], values = ctx_files.column_ids(frame[c])
        context_fields[c] = {"source": "column", "values": values}
    for c in time_context:
        context_ids[c] = ctx_files.time_ids(stamps.to_numpy(dtype=np.float64), c)
        context_fields[c] = ctx_files.time_entry(c)
    if users is not None:
        clicks["user"] = users

    # duplicates: same group, item and time as an earlier row
    dup = clicks.duplicated(["group", "item", "time"]).to_numpy() if time is not None else None
    count = int(dup.sum()) if dup is not None else 0
    first = int(np.flatnonzero(dup)[0]) if count else None
    report_duplicates(stats, count, first, where, label, (group_col, item, time), duplicates)
    if count and duplicates == "drop":
        clicks = clicks[~dup]

    # time order within each group
    codes = pd.factorize(clicks["group"])[0]
    clicks["code"] = codes
    if time is not None:
        previous = clicks.groupby("code")["time"].shift()
        late = (clicks["time"] < previous).to_numpy()
        first = int(clicks["row"].to_numpy()[np.flatnonzero(late)[0]]) if late.any() else None
        report_unsorted(stats, int(late.sum()), first, where, label, (group_col, time), unsorted)
    else:
        stats["rows_out_of_time_order"] = 0
    clicks = clicks.sort_values(["code", "time"], kind="stable")

    with _staged(Path(out_dir), finish) as out:
        meta = options | {"source": label, "item_id_type": item_type, "user_id_type": user_type}
        if mode == "session":
            if users is not None:
                several = clicks["user"] != clicks.groupby("code")["user"].transform("first")
                if several.any():
                    row = int(clicks.loc[several, "row"].min())
                    raise ValueError(
                        f"{where(row)}: column {user!r}: this session has several users"
                    )
            clicks["date"] = clicks.groupby("code")["time"].transform("max")
            protocol_frame = clicks.rename(columns={"code": "session"})[
                ["session", "item", "date", *(["user"] if users is not None else []), "row"]
            ]
            result = standard_protocol(
                protocol_frame,
                test_days=test_days,
                test_fraction=test_fraction,
                min_item_support=min_item_support,
                min_session_length=min_session_length,
            )
            stats.update(result["stats"])
            item_labels, new_of_old = _sorted_labels(result["item_ids"], item_type)
            for part in ("train", "test"):
                write_sessions(
                    out / f"{part}_sessions.txt", [new_of_old[s].tolist() for s in result[part]]
                )
            written_rows = [result["train_rows"], result["test_rows"]]
            _write_labels(out / "items.tsv", item_labels)
            if users is not None:
                all_users = np.asarray(result["train_users"] + result["test_users"], dtype=object)
                user_labels, user_code = _compact_labels(all_users, user_type)
                n = len(result["train_users"])
                for part, codes_ in (("train", user_code[:n]), ("test", user_code[n:])):
                    (out / f"{part}_session_users.txt").write_text(
                        "".join(f"{c}\n" for c in codes_)
                    )
                _write_labels(out / "users.tsv", user_labels)
                stats["users"] = len(user_labels) - 1
        else:
            count = clicks.groupby("item")["item"].transform("size")
            rare = (count < min_item_support).to_numpy()
            stats["dropped_rows_rare_items"] = int(rare.sum())
            stats["dropped_items_rare"] = int(clicks.loc[rare, "item"].nunique())
            clicks = clicks[~rare]
            if clicks.empty:
                raise ValueError(
                    f"{label}: nothing is left after min_item_support={min_item_support}"
                )
            item_labels, item_code = _compact_labels(
                clicks["item"].to_numpy(dtype=object), item_type
            )
            user_labels, user_code = _compact_labels(
                clicks["user"].to_numpy(dtype=object), user_type
            )
            order = np.argsort(user_code, kind="stable")  # users in id order, each in time order
            lines = np.char.add(
                np.char.add(user_code[order].astype(str), " "), item_code[order].astype(str)
            )
            (out / "interactions.txt").write_text("\n".join(lines.tolist()) + "\n")
            written_rows = [clicks["row"].to_numpy()[order]]
            _write_labels(out / "items.tsv", item_labels)
            _write_labels(out / "users.tsv", user_labels)
            per_user = np.bincount(user_code)[1:]
            stats.update(
                interactions=len(clicks),
                items=len(item_labels) - 1,
                users=len(user_labels) - 1,
                evaluated_users=int((per_user >= 3).sum()),
            )
        if context_ids:
            _write_context(out, mode, context_ids, context_fields, written_rows)
        write_meta(out, meta, stats)
    log.info("%s -> %s: %s", label, out_dir, stats)
    return _with_field_stats(stats, Path(out_dir), tables)


def _write_context(out: Path, mode: str, ids: dict, fields: dict, written_rows: list) -> None:
    """The context files of the pandas path: the value ids of the written clicks
    (``written_rows``: per file, the log rows of its sessions, or of its lines)."""
    from graphrec.datasets import context as ctx_files

    names = list(ids)
    zeros = dict.fromkeys(names, 0)
    clicks = 0
    for file, rows in zip(ctx_files.FILES[mode], written_rows, strict=True):
        if mode == "session":
            lines = ctx_files.session_lines(ids, rows)
            flat = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        else:
            lines = ("\t".join(str(ids[n][r]) for n in names) for r in rows.tolist())
            flat = rows
        ctx_files.write_lines(out / file, names, lines)
        clicks += len(flat)
        for n in names:
            zeros[n] += int((ids[n][flat] == 0).sum())
    ctx_files.add_entry(out, ctx_files.entry(fields, zeros, clicks))


def _with_field_stats(stats: dict[str, Any], out: Path, tables: dict) -> dict[str, Any]:
    """The counts of the side-field tables (``fields.json``'s) beside the log's."""
    if (out / "fields.json").is_file():
        entries = json.loads((out / "fields.json").read_text())
        for kind, entry in entries.items():
            sizes = {name: len(f["values"]) for name, f in entry["fields"].items()}
            stats[f"{kind}_fields"] = {"values": sizes, **entry["stats"]}
    return stats


def _feature_tables(
    item_features, item_cols, user_features, user_cols, multi_valued, value_sep, item, user,
    encoding, text_ids,
) -> dict:  # fmt: skip
    """The side-field tables given to :func:`from_click_log`, read and checked."""
    from graphrec.datasets.features import read_feature_table

    multi = list(multi_valued or [])
    tables = {}
    for kind, source, cols, id_col in (("item", item_features, item_cols, item),
                                       ("user", user_features, user_cols, user)):  # fmt: skip
        if source is None:
            if cols:
                raise ValueError(f"{kind}_feature_cols need {kind}_features (a table)")
            continue
        if id_col is None:
            raise ValueError("user_features need the log's user column (user=, --user-col)")
        tables[kind] = read_feature_table(
            source, kind, id_col, cols, multi, value_sep, encoding=encoding, text_ids=text_ids
        )
    named = {c for t in tables.values() for c, m in t.multi.items() if m}
    stray = sorted(set(multi) - named)
    if stray:
        raise ValueError(f"multi_valued column(s) {stray} are in no feature table")
    return tables


def _write_fields(tables: dict, out: Path) -> None:
    """``finish`` of :func:`_staged`: the side-field files of a written folder."""
    from graphrec.datasets.features import write_feature_files, write_fields_json

    meta = json.loads((out / "meta.json").read_text())
    path = out / "fields.json"
    entries = json.loads(path.read_text()) if path.is_file() else {}  # the context's
    for kind, table in tables.items():
        labels_file = out / f"{kind}s.tsv"
        if not labels_file.is_file():
            raise ValueError(f"user_features given, but the log has no users ({labels_file.name})")
        labels = _read_labels(labels_file, meta[f"{kind}_id_type"])
        entries[kind] = write_feature_files(out, table, labels, meta[f"{kind}_id_type"])
    write_fields_json(out, entries)


def report_duplicates(
    stats: dict, count: int, first: int | None, where, label: str, columns: tuple, duplicates: str
) -> None:
    """Rows repeating the group, item and time (``columns``) of an earlier row: their
    count in ``stats``, an error (``duplicates="error"``) or a warning naming the first."""
    group_col, item, time = columns
    stats["duplicate_rows"] = count
    if count:
        if duplicates == "error":
            raise ValueError(
                f"{where(first)}: duplicate of an earlier row (same {group_col!r}, {item!r} "
                f"and {time!r}); pass duplicates='drop' or 'keep' (--duplicates)"
            )
        log.warning(
            "%s: %d duplicate row(s) (first: %s); %s",
            label, count, where(first),
            "dropped" if duplicates == "drop" else "kept, as the reference protocol does",
        )  # fmt: skip
    stats["dropped_duplicate_rows"] = count if duplicates == "drop" else 0


def report_unsorted(
    stats: dict, count: int, first: int | None, where, label: str, columns: tuple, unsorted: str
) -> None:
    """Rows earlier than the row before them in their group: their count in ``stats``,
    an error (``unsorted="error"``) or a warning naming the first."""
    group_col, time = columns
    stats["rows_out_of_time_order"] = count
    if count:
        if unsorted == "error":
            raise ValueError(
                f"{where(first)}: column {time!r} goes back in time within its "
                f"{group_col} (pass unsorted='sort', --unsorted sort)"
            )
        log.warning(
            "%s: %d row(s) earlier than the row before them in their %s (first: %s); "
            "each %s is sorted by time (stable)",
            label, count, group_col, where(first), group_col,
        )  # fmt: skip


def _options(out_dir, name, mode, session, item, time, user, **options) -> dict[str, Any]:
    """The head of ``meta.json``: what was asked for (the source and id types follow)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": name or Path(out_dir).resolve().name,
        "mode": mode,
        "columns": {"session": session, "item": item, "time": time, "user": user},
        "options": options,
    }


def write_meta(out: Path, meta: dict[str, Any], stats: dict[str, Any]) -> None:
    """``meta.json``: the options, the source, the id types, then the counts."""
    head = {k: meta[k] for k in ("format", "version", "name", "mode")}
    meta = head | {"source": meta["source"]} | {k: v for k, v in meta.items() if k not in head}
    meta["stats"] = stats
    (out / "meta.json").write_text(json.dumps(meta, indent=2, default=_plain) + "\n")


def _engine(engine: str, source, encoding: str, ids: tuple = (), time: str | None = None) -> str:
    """The engine that preprocesses ``source``: ``"duckdb"`` or ``"pandas"`` (``auto``:
    DuckDB for a file it reads as pandas does: a text encoding it has, a Parquet file
    whose id columns ``ids`` and ``time`` column are of types it reads)."""
    from graphrec.datasets import duck

    if engine not in duck.ENGINES:
        raise ValueError(f"engine must be one of {duck.ENGINES}, got {engine!r}")
    if isinstance(source, pd.DataFrame):
        if engine == "duckdb":
            raise ValueError(
                "engine='duckdb' reads files (CSV, TSV, Parquet); a DataFrame is already in "
                "memory and is preprocessed with pandas (engine='auto' or 'pandas')"
            )
        return "pandas"
    if engine != "auto":
        return engine
    if not duck.available():
        return "pandas"
    if Path(source).suffix.lower() in (".parquet", ".pq"):
        return "duckdb" if duck.reads_parquet_columns(Path(source), ids, time) else "pandas"
    return "duckdb" if duck.codec(encoding) is not None else "pandas"


#: every file a click-log folder may hold (the ones a mode does not write are removed)
OUTPUTS = (
    "items.tsv", "users.tsv", "train_sessions.txt", "test_sessions.txt",
    "train_session_users.txt", "test_session_users.txt", "interactions.txt",
    "item_features.tsv", "user_features.tsv", "fields.json",
    "train_context.tsv", "test_context.tsv", "context.tsv",
)  # fmt: skip


@contextmanager
def _staged(final: Path, finish: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """A new folder beside ``final`` to write the outputs into; on success they
    replace ``final``'s (each file by an atomic rename, ``meta.json`` last, the
    outputs the new folder lacks removed), on failure it is deleted and
    ``final`` is left as it was: a folder is never half-written. ``finish``
    adds to the written folder before it replaces ``final`` (the side fields)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield staging
        if finish is not None:
            finish(staging)
        final.mkdir(exist_ok=True)
        (final / "meta.json").unlink(missing_ok=True)  # incomplete until the new one lands
        for name in OUTPUTS:
            if (staging / name).is_file():
                os.replace(staging / name, final / name)
            else:
                (final / name).unlink(missing_ok=True)
        os.replace(staging / "meta.json", final / "meta.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to meta.json")


def _sort_key(labels: np.ndarray, kind: str) -> np.ndarray:
    return labels.astype(np.int64) if kind == "int" else labels.astype(str)


def _sorted_labels(first_seen: np.ndarray, kind: str) -> tuple[list, np.ndarray]:
    """Labels in sorted order (entry 0 = padding), and the new id of every old id 1..n."""
    order = np.argsort(_sort_key(np.asarray(first_seen, dtype=object), kind), kind="stable")
    new_of_old = np.zeros(len(first_seen) + 1, dtype=np.int64)
    new_of_old[order + 1] = np.arange(1, len(first_seen) + 1)
    return [None, *np.asarray(first_seen, dtype=object)[order].tolist()], new_of_old


def _compact_labels(values: np.ndarray, kind: str) -> tuple[list, np.ndarray]:
    """Sorted distinct labels (entry 0 = padding) and the compact id of every value."""
    keys = _sort_key(values, kind)
    uniq, inverse = np.unique(keys, return_inverse=True)
    return [None, *uniq.tolist()], inverse.astype(np.int64) + 1


def _write_labels(path: Path, labels: list) -> None:
    path.write_text("# id\toriginal\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(labels) if i))


def _read_labels(path: Path, kind: str) -> list:
    """``[None, label of 1, label of 2, ...]`` from ``items.tsv``/``users.tsv``."""
    labels: list = [None]
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.startswith("#") or not line.strip():
                continue
            number, sep, value = line.rstrip("\n").partition("\t")
            if not sep or number != str(len(labels)):
                raise ValueError(f"{path}, line {lineno}: expected '{len(labels)}<TAB>original id'")
            labels.append(int(value) if kind == "int" else value)
    return labels


def is_click_log_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by :func:`from_click_log`."""
    return (Path(path) / "meta.json").is_file()


def read_meta(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``meta.json`` of a processed folder, checked."""
    path = Path(folder) / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{path}: not a graphrec click-log folder of version {VERSION}")
    return meta


def load_click_log(
    folder: str | os.PathLike,
    split: str = "train",
    valid_fraction: float = 0.1,
    weighting: str = "binary",
    max_length: int | None = None,
    history_length: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> SessionDataset:
    """A split of a folder written by :func:`from_click_log`.

    Session mode: prefix-augmented sessions as for the benchmarks, the last
    ``valid_fraction`` of the training sessions (time order) held out for
    validation; with users, every sample has its user and the long-term
    history (``history_length``) runs across earlier sessions of that user,
    training sessions included for test samples. Sequential mode: the
    leave-one-out splits (``valid_fraction > 0`` holds out the second-to-last
    item; ``max_length`` defaults to 50 there).

    The dataset's ``item_ids`` (integer ids) or ``item_labels`` (text ids) and
    ``user_labels`` carry the log's own ids; ``item_features`` and
    ``user_features`` the side fields of a product or profile table given to
    :func:`from_click_log` (``fields.json`` names their values).
    """
    folder = Path(folder)
    meta = read_meta(folder)
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be train, valid or test, got {split!r}")
    if split == "valid" and valid_fraction == 0:
        raise ValueError("split='valid' needs valid_fraction > 0")
    split_sessions(1, valid_fraction)  # validates it
    sequential = meta["mode"] == "sequential"
    if sequential and max_length is None:
        max_length = 50
    item_labels = _read_labels(folder / "items.tsv", meta["item_id_type"])
    user_file = folder / "users.tsv"
    user_labels = _read_labels(user_file, meta["user_id_type"]) if user_file.is_file() else None
    sources = (
        ["interactions.txt"]
        if sequential
        else ["train_sessions.txt", "test_sessions.txt"]
        + (["train_session_users.txt", "test_session_users.txt"] if user_labels else [])
    )
    from graphrec.datasets import context as ctx_files

    if meta.get("context"):  # the samples' contexts are cached with them
        sources += [*ctx_files.FILES[meta["mode"]], "fields.json"]
    checksums = {s: sha256(folder / s) for s in (*sources, "items.tsv")}
    tag = f"{split}-v{valid_fraction:g}-{weighting}-len{max_length}-hist{history_length}"
    cache_file = (Path(cache_dir) if cache_dir else folder / "processed") / f"{tag}.pt"
    dataset = read_cache(cache_file, checksums) if cache else None
    if dataset is None:
        build = _build_sequential if sequential else _build_sessions
        num_users = 0 if user_labels is None else len(user_labels) - 1
        dataset = build(
            folder, split, valid_fraction, weighting, max_length, history_length,
            num_items=len(item_labels) - 1, num_users=num_users, name=f"{meta['name']}/{split}",
        )  # fmt: skip
        if cache:
            write_cache(cache_file, checksums, dataset)
    _attach_labels(dataset, item_labels, meta["item_id_type"], user_labels)
    # the side fields, from their own files (never from the cache: always the folder's)
    dataset.item_features = checked_tables(
        read_feature_files(folder, "item", dataset.num_items), dataset.num_items, "item_features"
    )
    users = read_feature_files(folder, "user", dataset.num_users) if user_labels else {}
    dataset.user_features = checked_tables(users, dataset.num_users, "user_features")
    if meta.get("context"):
        entry = json.loads((folder / "fields.json").read_text())["context"]
        dataset.context_labels = {n: [None, *f["values"]] for n, f in entry["fields"].items()}
    return dataset


def _sample_context(folder: Path, mode: str, lengths: list, target: Tensor, order=None):
    """``(context, context_sizes)`` of the samples whose target clicks are ``target``
    (indices into the clicks of the folder's files; ``order``: how the builder
    reordered those clicks), or ``({}, None)`` without context files."""
    from graphrec.datasets import context as ctx_files

    found = ctx_files.read_context_files(folder, mode, lengths)
    if found is None:
        return {}, None
    values = found["values"] if order is None else {k: v[order] for k, v in found["values"].items()}
    return {k: v[target] for k, v in values.items()}, found["sizes"]


def _attach_labels(dataset: SessionDataset, item_labels: list, kind: str, user_labels) -> None:
    if kind == "int":
        dataset.item_ids = torch.tensor([0, *item_labels[1:]], dtype=torch.long)
        dataset.item_labels = None
    else:
        dataset.item_labels = item_labels
    dataset.user_labels = user_labels


def _read_users(path: Path, count: int, num_users: int) -> torch.Tensor:
    values = path.read_text().split()
    if len(values) != count or not all(v.isdigit() for v in values):
        raise ValueError(f"{path}: expected {count} user ids, one per session")
    users = torch.tensor([int(v) for v in values], dtype=torch.long)
    if count and (int(users.min()) < 1 or int(users.max()) > num_users):
        raise ValueError(f"{path}: user ids must lie in 1..{num_users}")
    return users


def _build_sessions(
    folder, split, valid_fraction, weighting, max_length, history_length, *, num_items, num_users,
    name,
) -> SessionDataset:  # fmt: skip
    train_items, train_ptr = read_sessions(folder / "train_sessions.txt")
    test_items, test_ptr = read_sessions(folder / "test_sessions.txt")
    for items, file in ((train_items, "train"), (test_items, "test")):
        if items.numel() and int(items.max()) > num_items:
            raise ValueError(f"{folder / (file + '_sessions.txt')}: item id above {num_items}")
    num_train = train_ptr.numel() - 1
    # one log, training sessions then test sessions (time order): a test sample's
    # user history reaches back into training
    items = torch.cat([train_items, test_items])
    ptr = torch.cat([train_ptr, test_ptr[1:] + train_ptr[-1]])
    session_user = None
    if num_users:
        session_user = torch.cat(
            [
                _read_users(folder / "train_session_users.txt", num_train, num_users),
                _read_users(folder / "test_session_users.txt", test_ptr.numel() - 1, num_users),
            ]
        )
    if split == "test":
        chosen = torch.arange(num_train, ptr.numel() - 1)
    else:
        train_idx, valid_idx = split_sessions(num_train, valid_fraction)
        chosen = train_idx if split == "train" else valid_idx
    lengths = ptr.diff()[chosen]
    chosen_ptr = _ptr(lengths)
    chosen_items = items[_positions(ptr[:-1][chosen], lengths)]
    prefix_length, local = prefix_samples(chosen_ptr)
    target = ptr[:-1][chosen[local]] + prefix_length
    context, context_sizes = _sample_context(
        folder, "session", [train_ptr.diff(), test_ptr.diff()], target
    )
    dataset = SessionDataset.from_prefixes(
        items,
        ptr,
        chosen[local],
        prefix_length,
        num_items,
        weighting=weighting,
        max_length=max_length,
        session_user=session_user,
        history_length=history_length,
        sessions=(chosen_items, chosen_ptr),
        session_index=session_rows(chosen, ptr.numel() - 1),
        num_users=num_users or None,
        name=name,
        context=context,
        context_sizes=context_sizes,
    )
    if context and not torch.equal(dataset.y, items[target]):
        raise AssertionError(f"{folder}: the contexts are not aligned with the samples")
    return dataset


def _build_sequential(
    folder, split, valid_fraction, weighting, max_length, history_length, *, num_items, num_users,
    name,
) -> SessionDataset:  # fmt: skip
    user, item = read_interactions(folder / "interactions.txt")
    if int(item.max()) > num_items or int(user.max()) > num_users:
        raise ValueError(f"{folder / 'interactions.txt'}: ids beyond items.tsv / users.tsv")
    # the context of each sample is its target's (the samples of sequences_dataset)
    order = torch.argsort(user, stable=True)
    ptr = _ptr(torch.bincount(user[order], minlength=num_users + 1)[1:])
    sample_sequence, prefix_length, _ = leave_one_out(ptr, split, valid_fraction > 0)
    target = ptr[:-1][sample_sequence] + prefix_length
    context, context_sizes = _sample_context(
        folder, "sequential", [torch.ones(user.numel(), dtype=torch.long)], target, order
    )
    dataset = sequences_dataset(
        user, item, num_users, num_items, split, valid=valid_fraction > 0, weighting=weighting,
        max_length=max_length, history_length=history_length, name=name, context=context,
        context_sizes=context_sizes,
    )  # fmt: skip
    if context and not torch.equal(dataset.y, item[order][target]):
        raise AssertionError(f"{folder}: the contexts are not aligned with the samples")
    return dataset
