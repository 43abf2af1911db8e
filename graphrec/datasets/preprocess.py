"""Raw click logs -> the standard session files (SR-GNN reference protocol).

The protocol of ``preprocess.py`` of the SR-GNN authors (Wu et al., AAAI 2019),
implemented with vectorised pandas:

1. Group clicks into sessions. Diginetica: a session's clicks are ordered by
   ``timeframe`` (stable: ties keep file order), its date is the ``eventdate``
   of its last row in the file. YooChoose: clicks keep file order, the
   session's date is the timestamp (to the second) of its last row.
2. Drop sessions of length 1.
3. Count every item over all remaining clicks; drop clicks on items seen fewer
   than 5 times; drop sessions left with fewer than 2 clicks.
4. ``split = max date - 7 days`` (Diginetica) or ``- 1 day`` (YooChoose).
   Training sessions are dated strictly before ``split``, test sessions
   strictly after it: a session dated exactly ``split`` is in neither (a quirk
   of the reference, kept so the counts match).
5. Sort each split by date (stable: ties keep the order in which sessions
   first appear in the log).
6. Renumber items from 1 in order of first appearance in the training sessions.
7. Drop test clicks on items unseen in training, then test sessions left with
   fewer than 2 clicks.
8. YooChoose 1/64 and 1/4: prefix-augment the training sessions (``n``
   samples), keep the last ``int(n / 64)`` (``int(n / 4)``) samples, and
   keep the full sessions those samples come from, from the session of the
   first kept sample on. Item ids stay those of the full training set.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec.datasets.io import log, write_sessions

DAY = 86_400


def _checked_int(column: pd.Series, name: str, path: Path, header_lines: int) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() | (values != values.round())
    if bool(bad.any()):
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}, line {row + 1 + header_lines}: {name} {column.iloc[row]!r} is not an integer"
        )
    return values.astype(np.int64)


def _sessions(df: pd.DataFrame, column: str = "item") -> list:
    """Split a frame sorted by session (column ``rank``) into lists of items (or of
    another column's values: arrays)."""
    bounds = np.flatnonzero(np.diff(df["rank"].to_numpy())) + 1
    if not len(df):
        return []
    parts = np.split(df[column].to_numpy(), bounds)
    return [a.tolist() for a in parts] if column == "item" else parts


def _session_users(df: pd.DataFrame) -> list:
    """The user of every session of a frame sorted by session (column ``rank``)."""
    return df.groupby("rank", sort=True)["user"].first().tolist()


def _split_date(seconds: float) -> dict[str, Any]:
    """The split between training and test, readable (UTC) and in seconds."""
    when = pd.Timestamp(float(seconds), unit="s", tz="UTC")
    return {"split_date": when.isoformat().replace("+00:00", "Z"), "split_timestamp": int(seconds)}


def standard_protocol(
    clicks: pd.DataFrame,
    test_days: float | None = None,
    test_fraction: float | None = None,
    min_item_support: int = 5,
    min_session_length: int = 2,
) -> dict:
    """Steps 2-7 of the protocol on a frame of clicks in session order.

    Args:
        clicks: columns ``session`` (codes numbered in order of first
            appearance), ``item`` and ``date`` (seconds; the session's date on
            every row), rows already in click order within each session; an
            optional ``user`` column (one user per session) is carried along, and
            an optional ``row`` column (the click's row in the log).
        test_days (float, optional): the test period: sessions dated after
            ``max date - test_days`` days (the reference's split).
        test_fraction (float, optional): instead, the most recent share of
            the sessions (by date, ties in order of first appearance).
        min_item_support (int): drop clicks on items clicked fewer times.
            (default: ``5``)
        min_session_length (int): drop sessions with fewer clicks, before and
            after the item filter (and test sessions after the unseen-item
            filter). (default: ``2``)

    Returns:
        A dict with ``train`` and ``test`` (lists of sessions, renumbered item
        ids), ``item_ids`` (original id of each new id, from 1), the session
        users when ``clicks`` has them (``train_users``, ``test_users``), and
        the counts of what each step removed; with ``row``, ``train_rows`` and
        ``test_rows``: each session's rows (arrays, in click order).
    """
    if (test_days is None) == (test_fraction is None):
        raise ValueError("give exactly one of test_days and test_fraction")
    if test_fraction is not None and not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    if min_session_length < 2:
        raise ValueError(f"min_session_length must be >= 2, got {min_session_length}")
    stats = {"raw_clicks": len(clicks), "raw_sessions": int(clicks["session"].nunique())}
    length = clicks.groupby("session")["item"].transform("size")
    clicks = clicks[length >= min_session_length]
    # (named after the reference's min_session_length = 2)
    stats["dropped_sessions_length_1"] = stats["raw_sessions"] - int(clicks["session"].nunique())
    item_count = clicks.groupby("item")["item"].transform("size")
    rare = item_count < min_item_support
    stats["dropped_clicks_rare_items"] = int(rare.sum())
    stats["dropped_items_rare"] = int(clicks.loc[rare, "item"].nunique())
    before = int(clicks["session"].nunique())
    clicks = clicks[~rare]
    clicks = clicks[clicks.groupby("session")["item"].transform("size") >= min_session_length]
    stats["dropped_sessions_after_item_filter"] = before - int(clicks["session"].nunique())
    if clicks.empty:
        raise ValueError(
            "no session is left after the filters (min_session_length="
            f"{min_session_length}, min_item_support={min_item_support})"
        )

    dates = clicks.groupby("session")["date"].first()  # index: session codes, ascending
    if test_days is not None:
        split = dates.max() - test_days * DAY
        stats.update(_split_date(split))
        stats["dropped_sessions_on_split_date"] = int((dates == split).sum())
        chosen = {"train": dates[dates < split], "test": dates[dates > split]}
    else:
        order = dates.sort_values(kind="stable")
        num_train = len(order) - max(1, round(test_fraction * len(order)))
        stats.update(_split_date(order.iloc[num_train]))
        stats["dropped_sessions_on_split_date"] = 0
        chosen = {"train": order.iloc[:num_train], "test": order.iloc[num_train:]}
    parts = {}
    for part, picked in chosen.items():
        order = picked.sort_values(kind="stable")  # ties keep first-appearance order
        rank = pd.Series(np.arange(len(order)), index=order.index)
        sel = clicks[clicks["session"].isin(order.index)].copy()
        sel["rank"] = sel["session"].map(rank)
        parts[part] = sel.sort_values("rank", kind="stable")

    train = parts["train"]
    if train.empty:
        raise ValueError("the split leaves no training session; use a shorter test period")
    codes, uniques = pd.factorize(train["item"])
    train = train.assign(item=codes + 1)
    new_id = pd.Series(np.arange(1, len(uniques) + 1), index=uniques)
    test = parts["test"]
    known = test["item"].isin(new_id.index)
    stats["dropped_test_clicks_unseen_items"] = int((~known).sum())
    test = test[known].assign(item=lambda d: d["item"].map(new_id))
    before = int(test["session"].nunique())
    test = test[test.groupby("session")["item"].transform("size") >= min_session_length]
    stats["dropped_test_sessions_after_unseen_filter"] = before - int(test["session"].nunique())
    result = {
        "train": _sessions(train),
        "test": _sessions(test),
        "item_ids": np.asarray(uniques),
        "stats": stats,
    }
    if "row" in clicks.columns:
        result["train_rows"] = _sessions(train, "row")
        result["test_rows"] = _sessions(test, "row")
    if "user" in clicks.columns:
        result["train_users"] = _session_users(train)
        result["test_users"] = _session_users(test)
    stats.update(
        train_sessions=len(result["train"]),
        test_sessions=len(result["test"]),
        items=len(uniques),
    )
    for key, value in stats.items():
        log.info("%s: %s", key, value)
    return result


def _write(out: Path, train: list[list[int]], test: list[list[int]], item_ids) -> None:
    """The three files of a benchmark folder, each written beside its final name (in a
    staging folder inside ``out``) and renamed over it, as the DuckDB path does."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".graphrec-", suffix=".tmp", dir=out))
    try:
        write_sessions(staging / "train_sessions.txt", train)
        write_sessions(staging / "test_sessions.txt", test)
        with open(staging / "item_ids.txt", "w") as f:
            f.write("# new_id original_id\n")
            for new, orig in enumerate(item_ids, start=1):
                f.write(f"{new} {orig}\n")
        for name in ("train_sessions.txt", "test_sessions.txt", "item_ids.txt"):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _use_duckdb(engine: str, path: Path) -> bool:
    """Whether ``engine`` (``auto``: DuckDB when installed) preprocesses the raw log on DuckDB."""
    from graphrec.datasets.clicklog import _engine

    return _engine(engine, path, "utf-8") == "duckdb"


def preprocess_diginetica(
    raw_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    engine: str = "auto",
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Turn Diginetica's ``train-item-views.csv`` into the standard split.

    Writes ``<out_dir>/diginetica/train_sessions.txt``, ``test_sessions.txt``
    and ``item_ids.txt`` (new id -> original id). ``out_dir`` is thus a data
    root for :func:`load_benchmark`.

    Args:
        raw_csv: the raw log.
        out_dir: the data root to write into.
        engine (str): ``"duckdb"``, ``"pandas"`` or ``"auto"`` (DuckDB when
            installed); the same files either way (see
            :func:`graphrec.datasets.from_click_log`). (default: ``"auto"``)
        memory_limit (str, optional): DuckDB's memory limit.
        threads (int, optional): DuckDB's threads.
        progress (bool): a progress bar per DuckDB stage.

    Returns:
        The counts of every step (also logged).
    """
    path = Path(raw_csv)
    if _use_duckdb(engine, path):
        from graphrec.datasets.duck import diginetica

        return diginetica(path, Path(out_dir), memory_limit, threads, progress)
    if not path.is_file():
        raise FileNotFoundError(f"raw Diginetica log not found: {path}")
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    need = ["session_id", "item_id", "timeframe", "eventdate"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; expected the header "
            "session_id;user_id;item_id;timeframe;eventdate"
        )
    if df.empty:
        raise ValueError(f"{path}: no clicks")
    date = pd.to_datetime(df["eventdate"], format="%Y-%m-%d", errors="coerce")
    if bool(date.isna().any()):
        row = int(np.flatnonzero(date.isna().to_numpy())[0])
        raise ValueError(f"{path}, line {row + 2}: eventdate {df['eventdate'].iloc[row]!r}")
    clicks = pd.DataFrame(
        {
            "session": pd.factorize(_checked_int(df["session_id"], "session_id", path, 1))[0],
            "item": _checked_int(df["item_id"], "item_id", path, 1),
            "timeframe": _checked_int(df["timeframe"], "timeframe", path, 1),
            "date": date.astype("datetime64[s]").astype(np.int64),
        }
    )
    # The session's date is the eventdate of its last row in the file.
    clicks["date"] = clicks.groupby("session")["date"].transform("last")
    clicks = clicks.sort_values(["session", "timeframe"], kind="stable")
    result = standard_protocol(clicks[["session", "item", "date"]], test_days=7)
    _write(Path(out_dir) / "diginetica", result["train"], result["test"], result["item_ids"])
    return result["stats"]


def preprocess_yoochoose(
    clicks_dat: str | os.PathLike,
    out_dir: str | os.PathLike,
    fractions: tuple[int, ...] = (64, 4),
    engine: str = "auto",
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: bool = False,
) -> dict:
    """Turn YooChoose's ``yoochoose-clicks.dat`` into the 1/64 and 1/4 splits.

    Writes ``<out_dir>/yoochoose1_<f>/{train,test}_sessions.txt`` and
    ``item_ids.txt`` for every ``f`` in ``fractions``. The log has no header
    (a header line starting with ``session`` is tolerated).

    The engine options are those of :func:`preprocess_diginetica`.

    Returns:
        The counts of every step, and per fraction the samples kept.
    """
    path = Path(clicks_dat)
    for f in fractions:
        if int(f) != f or f < 1:
            raise ValueError(f"fractions must be positive integers, got {f!r}")
    if _use_duckdb(engine, path):
        from graphrec.datasets.duck import yoochoose

        return yoochoose(path, Path(out_dir), tuple(fractions), memory_limit, threads, progress)
    if not path.is_file():
        raise FileNotFoundError(f"raw YooChoose log not found: {path}")
    with open(path) as fh:
        first = fh.readline()
    header = 1 if first.lower().startswith("session") else 0
    df = pd.read_csv(
        path, sep=",", header=None, skiprows=header, usecols=[0, 1, 2], dtype=str, names=None
    )
    if df.empty:
        raise ValueError(f"{path}: no clicks")
    df.columns = ["session", "timestamp", "item"]
    stamp = pd.to_datetime(df["timestamp"].str[:19], format="%Y-%m-%dT%H:%M:%S", errors="coerce")
    if bool(stamp.isna().any()):
        row = int(np.flatnonzero(stamp.isna().to_numpy())[0])
        raise ValueError(
            f"{path}, line {row + 1 + header}: timestamp {df['timestamp'].iloc[row]!r}"
        )
    clicks = pd.DataFrame(
        {
            "session": pd.factorize(_checked_int(df["session"], "session id", path, header))[0],
            "item": _checked_int(df["item"], "item id", path, header),
            "date": stamp.astype("datetime64[s]").astype(np.int64),
        }
    )
    clicks["date"] = clicks.groupby("session")["date"].transform("last")
    result = standard_protocol(clicks, test_days=1)
    stats = result["stats"]
    train = result["train"]
    per_session = np.array([len(s) - 1 for s in train], dtype=np.int64)
    sample_session = np.repeat(np.arange(len(train)), per_session)
    for f in fractions:
        keep = int(len(sample_session) / f)
        if keep == 0:
            raise ValueError(f"1/{f} of {len(sample_session)} training samples keeps nothing")
        first_session = int(sample_session[-keep])
        subset = train[first_session:]
        stats[f"yoochoose1_{f}_samples_cut"] = keep
        stats[f"yoochoose1_{f}_sessions"] = len(subset)
        log.info("yoochoose1_%d: last %d samples -> %d sessions", f, keep, len(subset))
        _write(Path(out_dir) / f"yoochoose1_{f}", subset, result["test"], result["item_ids"])
    return stats
