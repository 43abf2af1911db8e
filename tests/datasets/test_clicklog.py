import json

import pandas as pd
import pytest
import torch

from graphrec import SRGNN
from graphrec.datasets import from_click_log, load_click_log, load_dataset
from graphrec.training import Trainer, load_model

# session, item, time. Worked out by hand (min_item_support=2, test_days=7):
# a: rows out of order -> y x z (dated 01-01 00:03)        train
# b: x x y, the second x a duplicate row (kept)            train
# c: one click -> dropped
# d: z y w; w is clicked once -> rare, dropped -> z y       test
# e: y x                                                    test (max date 01-10 00:01)
# compact ids follow the sorted labels: w dropped, x=1, y=2, z=3
ROWS = [
    ("a", "x", "2024-01-01T00:02:00"),
    ("a", "y", "2024-01-01T00:01:00"),
    ("a", "z", "2024-01-01T00:03:00"),
    ("b", "x", "2024-01-02T00:00:00"),
    ("b", "x", "2024-01-02T00:00:00"),
    ("b", "y", "2024-01-02T00:01:00"),
    ("c", "q", "2024-01-03T00:00:00"),
    ("d", "z", "2024-01-09T10:00:00"),
    ("d", "y", "2024-01-09T10:05:00"),
    ("d", "w", "2024-01-09T10:06:00"),
    ("e", "y", "2024-01-10T00:00:00"),
    ("e", "x", "2024-01-10T00:01:00"),
]


def write_csv(path, rows, header="session_id,item_id,timestamp", sep=","):
    path.write_text(header + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in rows))
    return path


def lines(path):
    return path.read_text().splitlines()


def test_session_mode_by_hand(tmp_path):
    csv = write_csv(tmp_path / "clicks.csv", ROWS)
    stats = from_click_log(csv, tmp_path / "log", min_item_support=2)
    out = tmp_path / "log"
    assert lines(out / "train_sessions.txt") == ["2 1 3", "1 1 2"]
    assert lines(out / "test_sessions.txt") == ["3 2", "2 1"]
    assert lines(out / "items.tsv")[1:] == ["1\tx", "2\ty", "3\tz"]
    assert stats["duplicate_rows"] == 1 and stats["dropped_duplicate_rows"] == 0
    assert stats["rows_out_of_time_order"] == 1
    assert stats["dropped_sessions_length_1"] == 1
    assert stats["dropped_items_rare"] == 1 and stats["dropped_clicks_rare_items"] == 1
    meta = json.loads((out / "meta.json").read_text())
    assert meta["name"] == "log" and meta["item_id_type"] == "str"
    assert meta["options"]["test_days"] == 7

    train = load_click_log(out, "train", valid_fraction=0)
    labels = train.item_labels
    pairs = [([labels[i] for i in s.x[s.alias].tolist()], labels[int(s.y)]) for s in train]
    assert pairs == [(["y", "x"], "z"), (["y"], "x"), (["x", "x"], "y"), (["x"], "x")]
    test = load_dataset(out, "test")
    assert [int(s.y) for s in test] == [2, 1] and test.name == "log/test"
    assert len(load_dataset(out, "valid", valid_fraction=0.5)) == 2  # session b


def test_drop_duplicates_and_test_fraction(tmp_path):
    csv = write_csv(tmp_path / "clicks.csv", ROWS)
    stats = from_click_log(
        csv, tmp_path / "log", min_item_support=2, duplicates="drop", test_fraction=0.25
    )
    assert stats["dropped_duplicate_rows"] == 1
    # 4 sessions survive the filters; the latest quarter (e) is the test split, and
    # d (z y w -> z y) trains: w is still rare
    assert lines(tmp_path / "log" / "train_sessions.txt") == ["2 1 3", "1 2", "3 2"]
    assert lines(tmp_path / "log" / "test_sessions.txt") == ["2 1"]


def test_integer_ids_stay_integers_and_tsv_parquet_dataframe_agree(tmp_path):
    rows = [(s, 1000 + ord(i), t) for s, i, t in ROWS]
    from_click_log(write_csv(tmp_path / "c.csv", rows), tmp_path / "csv", min_item_support=2)
    tsv = write_csv(tmp_path / "c.tsv", rows, header="session_id\titem_id\ttimestamp", sep="\t")
    from_click_log(tsv, tmp_path / "tsv", min_item_support=2)
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    from_click_log(frame, tmp_path / "frame", min_item_support=2)
    for name in ("tsv", "frame"):
        for f in ("train_sessions.txt", "test_sessions.txt", "items.tsv"):
            assert lines(tmp_path / name / f) == lines(tmp_path / "csv" / f)
    data = load_dataset(tmp_path / "csv", "train", valid_fraction=0)
    assert data.item_labels is None
    assert data.item_ids.tolist() == [0, 1000 + ord("x"), 1000 + ord("y"), 1000 + ord("z")]


def test_sequential_mode_leave_one_out(tmp_path):
    rows = [("u2", "b", 5), ("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u2", "a", 4),
            ("u2", "c", 6), ("u3", "a", 1), ("u1", "a", 4)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user", "item", "t"])
    stats = from_click_log(frame, tmp_path / "seq", session=None, item="item", time="t",
                           user="user", min_item_support=1)  # fmt: skip
    out = tmp_path / "seq"
    assert lines(out / "interactions.txt") == [
        "1 1",
        "1 2",
        "1 3",
        "1 1",
        "2 1",
        "2 2",
        "2 3",
        "3 1",
    ]
    assert stats["users"] == 3 and stats["evaluated_users"] == 2
    test = load_dataset(out, "test")
    assert [(s.x.tolist(), int(s.y), int(s.user)) for s in test] == [
        ([1, 2, 3], 1, 1),
        ([1, 2], 3, 2),
    ]
    valid = load_dataset(out, "valid")
    assert [(s.x.tolist(), int(s.y)) for s in valid] == [([1, 2], 3), ([1], 2)]
    train = load_dataset(out, "train")
    assert [(s.x.tolist(), int(s.y)) for s in train] == [([1], 2)]
    assert train.user_labels == [None, "u1", "u2", "u3"]


def test_session_users_history_reaches_into_training(tmp_path):
    rows = [("s1", "x", 1, "ann"), ("s1", "y", 2, "ann"), ("s1", "z", 3, "ann"),
            ("s2", "y", 10, "bob"), ("s2", "x", 11, "bob"),
            ("s3", "z", 30 * 86400, "ann"), ("s3", "x", 30 * 86400 + 1, "ann")]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp", "user_id"])
    from_click_log(frame, tmp_path / "u", user="user_id", min_item_support=1)
    test = load_dataset(tmp_path / "u", "test", history_length=10)
    (sample,) = list(test)
    assert sample.x.tolist() == [3] and int(sample.y) == 1
    assert test.user_labels[int(sample.user)] == "ann"
    assert sample.history.tolist() == [1, 2, 3]  # ann's training session x y z


@pytest.mark.parametrize(
    "rows, kwargs, match",
    [
        ([("a", "", "2024-01-01")], {}, r"clicks.csv, line 2: column 'item_id' has no value"),
        ([("a", "x", "2024-01-01"), ("a", "y", "yesterday")], {},
         r"line 3: column 'timestamp': cannot parse 'yesterday'"),
        (ROWS, {"duplicates": "error"}, r"line 6: duplicate of an earlier row"),
        (ROWS, {"unsorted": "error"}, r"line 3: column 'timestamp' goes back in time"),
        (ROWS, {"item": "product"}, r"missing column\(s\) \['product'\]"),
        (ROWS, {"min_item_support": 100}, r"no session is left after the filters"),
    ],
)  # fmt: skip
def test_bad_input_names_column_and_line(tmp_path, rows, kwargs, match):
    csv = write_csv(tmp_path / "clicks.csv", rows)
    with pytest.raises(ValueError, match=match):
        from_click_log(csv, tmp_path / "out", **kwargs)


def test_bad_dataframe_input_names_row(tmp_path):
    frame = pd.DataFrame(
        {"session_id": [1, 1], "item_id": [3.0, float("nan")], "timestamp": [1, 2]}
    )
    with pytest.raises(ValueError, match=r"DataFrame, row 1: column 'item_id' has no value"):
        from_click_log(frame, tmp_path / "out")
    frame = pd.DataFrame({"s": [1, 1], "item_id": [3, 4], "timestamp": [1, 2], "u": [1, 2]})
    with pytest.raises(ValueError, match="row 1: column 'u': this session has several users"):
        from_click_log(frame, tmp_path / "out", session="s", user="u")


def test_trained_model_speaks_the_logs_own_ids(tmp_path):
    # a log with text ids, every pattern frequent: "a" then "b" then "c" ...
    rows, t = [], 0
    for s in range(300):
        for j in range(4):
            rows.append((f"sess-{s}", f"item-{(s + j) % 9}", t))
            t += 60
    frame = pd.DataFrame(rows, columns=["session_id", "item_id", "timestamp"])
    from_click_log(frame, tmp_path / "log", test_fraction=0.2)
    train = load_dataset(tmp_path / "log", "train")
    valid = load_dataset(tmp_path / "log", "valid")
    torch.manual_seed(0)
    from graphrec.models import build_model

    model = build_model("srgnn", dataset=train, hidden_channels=16)
    assert isinstance(model, SRGNN) and model.item_labels == train.item_labels
    Trainer(model, train, valid, epochs=2, lr=0.01, run_dir=tmp_path / "run", progress=False).fit()
    loaded = load_model(tmp_path / "run" / "best.pt")
    assert loaded.item_labels == train.item_labels
    top = loaded.recommend([["item-3", "item-4"]], k=3, exclude_seen=True)
    assert isinstance(top[0][0], str) and len(top[0]) == 3
    assert not {"item-3", "item-4"} & set(top[0])
    assert top == model.recommend([["item-3", "item-4"]], k=3, exclude_seen=True)
    with pytest.raises(ValueError, match="session 0: item id 'nope' is not in the catalogue"):
        loaded.recommend([["nope"]], k=3)


def test_latin1_logs_name_the_line_and_read_with_an_encoding(tmp_path):
    csv = tmp_path / "clicks.csv"
    text = "session_id,item_id,timestamp\n" + "".join(
        f"{s},{i},2024-01-0{1 + s % 5}T00:0{n}:00\n"
        for s in range(1, 9) for n, i in enumerate(("caf\xe9", "th\xe9", "x"))
    )  # fmt: skip
    csv.write_bytes(text.encode("latin-1"))
    with pytest.raises(ValueError, match=r"clicks.csv, line 2, column 6: byte 0xe9 is not valid"):
        from_click_log(csv, tmp_path / "out", min_item_support=1)
    stats = from_click_log(
        csv, tmp_path / "out", min_item_support=1, encoding="latin-1", test_days=1
    )
    assert stats["rows"] == 24
    assert "caf\xe9" in (tmp_path / "out" / "items.tsv").read_text(encoding="utf-8")


def test_a_byte_order_mark_is_dropped(tmp_path):
    csv = tmp_path / "clicks.csv"
    csv.write_bytes(b"\xef\xbb\xbf" + write_csv(tmp_path / "x.csv", ROWS).read_bytes())
    stats = from_click_log(csv, tmp_path / "out", min_item_support=2)
    assert stats["rows"] == len(ROWS)


def test_an_id_too_large_for_64_bits_is_never_silently_text(tmp_path):
    rows = [
        (s, i, f"2024-01-0{s}T00:0{n}:00") for s in (1, 2, 3) for n, i in enumerate((1, 10, 100))
    ]
    rows[4] = (2, 10**30, "2024-01-02T00:01:00")
    csv = write_csv(tmp_path / "clicks.csv", rows)
    with pytest.raises(ValueError, match=r"line 6: column 'item_id': the integer id 1000000"):
        from_click_log(csv, tmp_path / "out", min_item_support=1)
    stats = from_click_log(csv, tmp_path / "out", min_item_support=1, text_ids=True, test_days=1)
    assert stats["rows"] == 9
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["item_id_type"] == "str"
    # 19-digit ids that fit stay integers
    rows[4] = (2, 2**62, "2024-01-02T00:01:00")
    from_click_log(write_csv(csv, rows), tmp_path / "out", min_item_support=1, test_days=1)
    assert json.loads((tmp_path / "out" / "meta.json").read_text())["item_id_type"] == "int"


@pytest.mark.parametrize(
    "times, match",
    [
        (["1743585390", "2025-04-02T10:00:00"],
         r"'timestamp' mixes numbers \(.*line 2: '1743585390'\) and other times \(.*line 3"),
        (["1743585390", "soon"], r"line 3: column 'timestamp': cannot parse 'soon' as a time"),
        (["2025-04-02T10:00:00", "2025-04-02T11:00:00+02:00"],
         r"mixes times with a UTC offset \(.*line 3.*\) and without one \(.*line 2"),
    ],
)  # fmt: skip
def test_mixed_time_formats_are_refused_clearly(tmp_path, times, match):
    rows = [("a", "x", times[0]), ("a", "y", times[1])]
    with pytest.raises(ValueError, match=match):
        from_click_log(write_csv(tmp_path / "clicks.csv", rows), tmp_path / "out")


def test_dates_without_a_time_and_offsets_everywhere_are_fine(tmp_path):
    rows = [
        (s, i, f"2024-01-0{s}T00:0{n}:00+01:00") for s in (1, 2, 3) for n, i in enumerate("xyz")
    ]
    stats = from_click_log(write_csv(tmp_path / "c.csv", rows), tmp_path / "o", min_item_support=1,
                           test_days=1)  # fmt: skip
    assert stats["split_date"] == "2024-01-01T23:02:00Z"  # readable, UTC
    assert stats["split_timestamp"] == 1704150120


def test_malformed_text_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty.csv: the file is empty"):
        from_click_log(empty, tmp_path / "out")
    wide = tmp_path / "wide.csv"
    wide.write_text("session_id,item_id,timestamp\n1,2,3\n1," + ",".join(["7"] * 300_003) + "\n")
    with pytest.raises(ValueError, match=r"wide.csv, line 3: 300004 fields where the header has 3"):
        from_click_log(wide, tmp_path / "out")
    mixed = write_csv(tmp_path / "mixed.csv", [("a", "x", "2024-01-01")] * 3)
    mixed.write_text(mixed.read_text() + "a;y;2024-01-02\n")
    with pytest.raises(
        ValueError,
        match=r"line 5: column 'item_id' has no value.*1 field\(s\) "
        r"separated by ',' but also 2 ';': mixed separators",
    ):
        from_click_log(mixed, tmp_path / "out")


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "log.parquet").write_bytes(b"PAR1")

    def no_engine(*args, **kwargs):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    with pytest.raises(ImportError, match=r'pip install "graphrec\[parquet\]"'):
        from_click_log(tmp_path / "log.parquet", tmp_path / "out", engine="pandas")


def test_a_folder_is_never_half_written(tmp_path):
    """A failure (here: nothing left after the filters, found after the rows were
    read) leaves no folder, or the previous one untouched; a success replaces the
    outputs and removes those of the other mode; no staging folder stays behind."""
    log = write_csv(tmp_path / "log.csv", ROWS)
    with pytest.raises(ValueError, match="no session is left"):
        from_click_log(log, tmp_path / "new", min_item_support=100)
    assert not (tmp_path / "new").exists()
    out = tmp_path / "shop"
    from_click_log(log, out, min_item_support=2)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="no session is left"):
        from_click_log(log, out, min_item_support=100)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # sequential mode over it: its session files go, its interactions arrive
    users = [(s, i, t, {"a": "u1", "b": "u2"}.get(s, "u3")) for s, i, t in ROWS]
    seq = write_csv(tmp_path / "seq.csv", users, header="session_id,item_id,timestamp,user")
    from_click_log(seq, out, session=None, user="user", min_item_support=1)
    assert sorted(p.name for p in out.iterdir()) == [
        "interactions.txt", "items.tsv", "meta.json", "users.tsv"
    ]  # fmt: skip
    assert json.loads((out / "meta.json").read_text())["mode"] == "sequential"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
