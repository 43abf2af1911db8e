"""The DuckDB engine against the pandas path: the same folders, byte for byte, and the
same errors, on generated logs with duplicates, ties and unsorted rows."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from graphrec.datasets import from_click_log, load_dataset

duckdb = pytest.importorskip("duckdb")


def _log(seed: int = 0, n: int = 6000, text_items: bool = False) -> pd.DataFrame:
    """Clicks with a long tail of items, minute-rounded times (ties), a sample of rows
    repeated at the end (duplicates, out of time order), and users."""
    rng = np.random.default_rng(seed)
    session = rng.integers(0, 900, n)
    item = rng.zipf(1.4, n) % 300
    stamp = 1_600_000_000 + rng.integers(0, 20 * 86_400, n)
    stamp -= stamp % 60
    frame = pd.DataFrame(
        {
            "session_id": session,
            "item_id": [f"sku-{i:03d}" for i in item] if text_items else item,
            "timestamp": stamp,
            "user": session % 250,
        }
    )
    return pd.concat([frame, frame.sample(300, random_state=seed)], ignore_index=True)


def _same_folders(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir() if p.is_file())
    assert names == sorted(p.name for p in b.iterdir() if p.is_file())
    for name in names:
        assert filecmp.cmp(a / name, b / name, shallow=False), name


def _both(tmp_path: Path, source, **options) -> tuple[dict, dict]:
    """Both engines on ``source``: their counts, having checked their folders match."""
    a = from_click_log(source, tmp_path / "pandas" / "out", engine="pandas", **options)
    b = from_click_log(source, tmp_path / "duckdb" / "out", engine="duckdb", **options)
    _same_folders(tmp_path / "pandas" / "out", tmp_path / "duckdb" / "out")
    return a, b


CASES = {
    "defaults": {},
    "users": {"user": "user"},
    "drop duplicates": {"duplicates": "drop"},
    "test fraction": {"test_fraction": 0.25},
    "filters": {"min_item_support": 2, "min_session_length": 3, "test_days": 3},
    "sequential": {"session": None, "user": "user"},
    "text ids": {"text_ids": True, "user": "user"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_folder_as_pandas(tmp_path: Path, case: str) -> None:
    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    a, b = _both(tmp_path, path, **CASES[case])
    assert a == b
    assert a["duplicate_rows"] > 0 and a["rows_out_of_time_order"] > 0


def test_text_items_iso_times_and_a_tsv(tmp_path: Path) -> None:
    frame = _log(1, text_items=True)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s").dt.strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    frame.loc[::7, "timestamp"] = frame.loc[::7, "timestamp"].str[:16]  # no seconds
    path = tmp_path / "log.tsv"
    frame.to_csv(path, sep="\t", index=False)
    a, b = _both(tmp_path, path, user="user")
    assert a == b and a["items"] > 10
    # loads the same dataset
    train = load_dataset(tmp_path / "duckdb" / "out", "train", cache=False)
    assert train.item_labels[1].startswith("sku-")


def test_times_pandas_reads_and_duckdb_casts_differently(tmp_path: Path) -> None:
    """Times outside the plain ISO form (hour only, seven decimals) go through pandas."""
    frame = _log(2, n=2000)
    stamp = pd.to_datetime(frame["timestamp"], unit="s")
    text = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str.cat(["1"] * len(frame))
    text[::5] = stamp[::5].dt.strftime("%Y-%m-%dT%H")
    frame["timestamp"] = text
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    a, b = _both(tmp_path, path, min_item_support=1)
    assert a == b


@pytest.mark.parametrize("unit", ["ms", "s"])
def test_numeric_times_in_a_unit_and_time_format(tmp_path: Path, unit: str) -> None:
    frame = _log(3)
    if unit == "ms":
        frame["timestamp"] = frame["timestamp"] * 1000 + 123
        a, b = _both(tmp_path, _csv(tmp_path, frame), time_unit="ms")
    else:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s").dt.strftime(
            "%d/%m/%Y %H:%M"
        )
        a, b = _both(tmp_path, _csv(tmp_path, frame), time_format="%d/%m/%Y %H:%M")
    assert a == b


def test_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    frame = _log(4)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s")
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    a, b = _both(tmp_path, path, user="user")
    assert a == b


def test_auto_leaves_parquet_columns_it_cannot_read_to_pandas(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    frame = _log(10)
    frame["item_id"] = frame["item_id"] % 2 == 0  # booleans: pandas reads them as text
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match="does not read as ids; use engine='pandas'"):
        from_click_log(path, tmp_path / "d", engine="duckdb", min_item_support=1)
    stats = from_click_log(path, tmp_path / "a", min_item_support=1)  # auto: pandas
    expected = from_click_log(path, tmp_path / "p", engine="pandas", min_item_support=1)
    assert stats == expected and stats["items"] == 2


def test_sequential_in_file_order(tmp_path: Path) -> None:
    frame = _log(5)[["user", "item_id"]]
    a, b = _both(tmp_path, _csv(tmp_path, frame), session=None, time=None, user="user")
    assert a == b and a["duplicate_rows"] == 0


@pytest.mark.parametrize(
    "items",
    [
        [" 7", "8 ", "\u30009", "10\xa0"],  # stripped as str.strip() strips: integers
        ["007", "7", "-0", "+5"],  # not plain integers: text, "007" and "7" two items
        ["12345678901234567890", "5", "6", "7"],  # 20 digits: text (does not fit)
        ["1234567890123456789", "5", "6", "7"],  # 19 digits: fits, integers
    ],
)
def test_ids_typed_as_pandas_types_them(tmp_path: Path, items: list[str]) -> None:
    frame = _log(9, n=1500)
    frame["item_id"] = [items[i % 4] for i in range(len(frame))]
    path = _csv(tmp_path, frame)
    if items[0].startswith("1234567890123456789") and len(items[0]) == 20:
        with pytest.raises(ValueError, match="does not fit in 64 bits"):
            from_click_log(path, tmp_path / "x", engine="duckdb", min_item_support=1)
        return
    a, b = _both(tmp_path, path, min_item_support=1)
    assert a == b


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "log.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _text(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode())
    return path


BAD = {
    "missing column": ("session_id,item_id,when\n1,2,3\n", {}),
    "empty item": ("session_id,item_id,timestamp\n1,5,10\n1, ,11\n", {}),
    "short line": ("session_id,item_id,timestamp\n1,5,10\n1,6\n", {}),
    "long line": ("session_id,item_id,timestamp\n1,5,10\n1,6,11,12\n", {}),
    "tab in id": ('session_id,item_id,timestamp\n1,"a\tb",10\n', {}),
    "line break in id": ('session_id,item_id,timestamp\n1,5,9\n1,"a\nb",10\n', {}),
    "huge int": ("session_id,item_id,timestamp\n1,5,10\n1,99999999999999999999,11\n", {}),
    "bad time": ("session_id,item_id,timestamp\n1,5,2024-01-01\n1,6,2024-13-45\n", {}),
    "numbers and text": ("session_id,item_id,timestamp\n1,5,10\n1,6,2024-01-01\n", {}),
    "numbers and junk": ("session_id,item_id,timestamp\n1,5,10\n1,6,soon\n", {}),
    "mixed zones": (
        "session_id,item_id,timestamp\n1,5,2024-01-01T10:00:00Z\n1,6,2024-01-01T11:00:00\n",
        {},
    ),
    "format": (
        "session_id,item_id,timestamp\n1,5,01/02/2024\n1,6,2024-02-01\n",
        {"time_format": "%d/%m/%Y"},
    ),
    "duplicate": ("session_id,item_id,timestamp\n1,5,10\n1,5,10\n", {"duplicates": "error"}),
    "unsorted": ("session_id,item_id,timestamp\n1,5,10\n1,6,9\n", {"unsorted": "error"}),
    "several users": ("session_id,item_id,timestamp,u\n1,5,10,a\n1,6,11,b\n", {"user": "u"}),
    "nothing left": ("session_id,item_id,timestamp\n1,5,10\n2,6,11\n", {}),
    "bad byte": ("session_id,item_id,timestamp\n1,5,10\n1,caf\xe9,11\n", {}),
    "no rows": ("session_id,item_id,timestamp\n", {}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_the_same_errors(tmp_path: Path, case: str) -> None:
    text, options = BAD[case]
    path = _text(tmp_path, text)
    messages = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(ValueError) as caught:
            from_click_log(path, tmp_path / engine / "out", engine=engine, **options)
        messages.append(str(caught.value))
        assert not (tmp_path / engine / "out" / "meta.json").exists()
    assert messages[0] == messages[1]
    assert str(path) in messages[0] or "no session" in messages[0] or "mixes" in messages[0]


def test_a_failed_run_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    good = _csv(tmp_path, _log(6))
    out = tmp_path / "out"
    from_click_log(good, out, engine="duckdb")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    bad = _text(tmp_path, "session_id,item_id,timestamp\n1,5,10\n1,6,\n", "bad.csv")
    with pytest.raises(ValueError, match="line 3"):
        from_click_log(bad, out, engine="duckdb")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_engine_choice(tmp_path: Path) -> None:
    frame = _log(7)
    with pytest.raises(ValueError, match="a DataFrame is already in memory"):
        from_click_log(frame, tmp_path / "out", engine="duckdb")
    with pytest.raises(ValueError, match="engine must be one of"):
        from_click_log(frame, tmp_path / "out", engine="spark")
    from_click_log(frame, tmp_path / "out")  # auto: pandas for a DataFrame


def test_memory_limit_and_progress(tmp_path: Path, capsys) -> None:
    path = _csv(tmp_path, _log(8))
    stats = from_click_log(path, tmp_path / "out", engine="duckdb", memory_limit="500MB",
                           threads=1, progress=True)  # fmt: skip
    assert stats["train_sessions"] > 0
    err = capsys.readouterr().err
    for stage in ("read", "check values", "duplicates", "item support", "write train_sessions.txt"):
        assert stage in err
    assert os.listdir(tmp_path / "out")


# -- the benchmarks' raw logs -----------------------------------------------------------


def _raw_diginetica(path: Path, seed: int = 0, n: int = 8000) -> Path:
    """Diginetica's raw format: ``;``-separated, timeframes with ties, sessions whose
    rows are not in timeframe order, dates over five weeks."""
    rng = np.random.default_rng(seed)
    session = rng.integers(1, 1500, n)
    frame = pd.DataFrame(
        {
            "session_id": session,
            "user_id": "NA",
            "item_id": rng.zipf(1.4, n) % 400 + 1,
            "timeframe": rng.integers(0, 50, n) * 1000,
            "eventdate": (
                pd.Timestamp("2016-05-01") + pd.to_timedelta(session % 36, unit="D")
            ).strftime("%Y-%m-%d"),
        }
    )
    frame.to_csv(path, sep=";", index=False)
    return path


def _folder_pair(tmp_path: Path, name: str) -> None:
    _same_folders(tmp_path / "pandas" / name, tmp_path / "duckdb" / name)
    for engine in ("pandas", "duckdb"):  # written beside their names and renamed: no leftovers
        assert not [p for p in (tmp_path / engine / name).iterdir() if p.name.startswith(".")]


def test_diginetica_the_same_files(tmp_path: Path) -> None:
    raw = _raw_diginetica(tmp_path / "train-item-views.csv")
    from graphrec.datasets import preprocess_diginetica

    a = preprocess_diginetica(raw, tmp_path / "pandas", engine="pandas")
    b = preprocess_diginetica(raw, tmp_path / "duckdb", engine="duckdb")
    assert a == b and a["train_sessions"] > 100
    _folder_pair(tmp_path, "diginetica")


def test_yoochoose_the_same_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 8000
    session = np.sort(rng.integers(1, 2000, n))  # a session's clicks together, in time order
    stamp = pd.Timestamp("2014-04-01") + pd.to_timedelta(session * 120 + rng.integers(0, 99, n),
                                                         unit="s")  # fmt: skip
    raw = tmp_path / "yoochoose-clicks.dat"
    pd.DataFrame(
        {
            "s": session,
            "t": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + "123Z",
            "i": 214_500_000 + rng.zipf(1.4, n) % 300,
            "c": 0,
        }
    ).to_csv(raw, header=False, index=False)
    from graphrec.datasets import preprocess_yoochoose

    a = preprocess_yoochoose(raw, tmp_path / "pandas", fractions=(64, 4, 1), engine="pandas")
    b = preprocess_yoochoose(raw, tmp_path / "duckdb", fractions=(64, 4, 1), engine="duckdb")
    assert a == b
    for f in (64, 4, 1):
        _folder_pair(tmp_path, f"yoochoose1_{f}")


@pytest.mark.parametrize(
    "text",
    [
        "1;NA;10;5;2016-05-01\n1;NA;abc;6;2016-05-01\n",
        "1;NA;10;5;2016-13-01\n",
        "1;NA;10;5;2016-05-01\nx;NA;11;6;2016-05-01\n",
        "1;NA;10;5.5;2016-05-01\n",
    ],
)
def test_diginetica_the_same_errors(tmp_path: Path, text: str) -> None:
    from graphrec.datasets import preprocess_diginetica

    raw = tmp_path / "v.csv"
    raw.write_text("session_id;user_id;item_id;timeframe;eventdate\n" + text)
    messages = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(ValueError) as caught:
            preprocess_diginetica(raw, tmp_path / engine, engine=engine)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]


@pytest.mark.data
def test_the_diginetica_raw_sample(shared_data: Path, tmp_path: Path) -> None:
    from graphrec.datasets import preprocess_diginetica

    raw = shared_data / "raw" / "diginetica-sample_train-item-views.csv"
    a = preprocess_diginetica(raw, tmp_path / "pandas", engine="pandas")
    b = preprocess_diginetica(raw, tmp_path / "duckdb", engine="duckdb")
    assert a == b
    _folder_pair(tmp_path, "diginetica")
