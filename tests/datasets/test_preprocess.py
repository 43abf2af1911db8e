import csv
import time
from pathlib import Path

import pytest

from graphrec.datasets import preprocess_diginetica, preprocess_yoochoose

HEADER = "session_id;user_id;item_id;timeframe;eventdate\n"
# session, item, timeframe, date. Expected outcome worked out by hand below.
DIGI_ROWS = [
    (1, 20, 300, "2016-05-01"),  # s1: file order 20,10,30; timeframe order 10,30,20
    (1, 10, 100, "2016-05-01"),
    (1, 30, 200, "2016-05-01"),
    (2, 10, 5, "2016-05-02"),  # s2: 10,20
    (2, 20, 6, "2016-05-02"),
    (3, 40, 1, "2016-05-01"),  # s3: 40 is rare (1 click) -> [10] -> dropped
    (3, 10, 2, "2016-05-01"),
    (4, 30, 1, "2016-05-03"),  # s4: one click -> dropped
    (6, 30, 1, "2016-06-01"),  # s6: test (max date), 30,20,10
    (6, 20, 2, "2016-06-01"),
    (6, 10, 3, "2016-06-01"),
    (5, 10, 1, "2016-05-25"),  # s5: dated exactly max - 7 days -> in neither split
    (5, 30, 2, "2016-05-25"),
    (7, 50, 1, "2016-05-30"),  # s7: 50 never in train -> [20] -> dropped
    (7, 50, 2, "2016-05-30"),
    (7, 50, 3, "2016-05-30"),
    (7, 50, 4, "2016-05-30"),
    (7, 50, 5, "2016-05-30"),
    (7, 20, 6, "2016-05-30"),
    (8, 20, 1, "2016-05-26"),  # s8: test, 20,(50),30 -> 20,30
    (8, 50, 2, "2016-05-26"),
    (8, 30, 3, "2016-05-26"),
    (9, 30, 1, "2016-05-02"),  # s9: 30,10,30 (same date as s2, appears later)
    (9, 10, 2, "2016-05-02"),
    (9, 30, 3, "2016-05-02"),
]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_diginetica_by_hand(tmp_path):
    raw = tmp_path / "train-item-views.csv"
    raw.write_text(HEADER + "".join(f"{s};NA;{i};{t};{d}\n" for s, i, t, d in DIGI_ROWS))
    stats = preprocess_diginetica(raw, tmp_path / "out")
    out = tmp_path / "out" / "diginetica"
    # train by date, ties in order of appearance: s1, s2, s9; ids 10->1, 30->2, 20->3
    assert lines(out / "train_sessions.txt") == ["1 2 3", "1 3", "2 1 2"]
    # test by date: s8 (05-26), s6 (06-01); s7 lost its unseen item 50 and then its length
    assert lines(out / "test_sessions.txt") == ["3 2", "2 3 1"]
    assert lines(out / "item_ids.txt")[1:] == ["1 10", "2 30", "3 20"]
    assert stats["dropped_sessions_length_1"] == 1
    assert stats["dropped_items_rare"] == 1
    assert stats["dropped_sessions_on_split_date"] == 1
    assert stats["dropped_test_clicks_unseen_items"] == 6
    assert stats["dropped_test_sessions_after_unseen_filter"] == 1


YOO_ROWS = [
    (11, "2014-04-01T10:00:00.000Z", 5), (11, "2014-04-01T10:00:03.000Z", 6),
    (11, "2014-04-01T10:00:05.000Z", 7),
    (12, "2014-04-02T09:00:00.000Z", 5), (12, "2014-04-02T09:01:00.000Z", 6),
    (13, "2014-04-03T08:00:00.000Z", 7), (13, "2014-04-03T08:00:01.000Z", 5),
    (13, "2014-04-03T08:00:02.000Z", 6), (13, "2014-04-03T08:00:03.000Z", 7),
    (13, "2014-04-03T08:00:04.000Z", 6),
    (14, "2014-04-04T08:00:00.000Z", 6),  # one click -> dropped
    # last click truncated to the second equals max - 1 day -> in neither split
    (15, "2014-04-05T11:00:00.000Z", 5), (15, "2014-04-05T12:00:00.500Z", 7),
    (16, "2014-04-06T11:59:00.000Z", 7), (16, "2014-04-06T11:59:30.000Z", 6),
    (16, "2014-04-06T12:00:00.000Z", 5),
]  # fmt: skip


def test_yoochoose_by_hand(tmp_path):
    raw = tmp_path / "yoochoose-clicks.dat"
    raw.write_text("".join(f"{s},{t},{i},0\n" for s, t, i in YOO_ROWS))
    stats = preprocess_yoochoose(raw, tmp_path, fractions=(1, 2))
    # ids: 5->1, 6->2, 7->3; train sessions 11, 12, 13 give 2 + 1 + 4 = 7 samples
    full = tmp_path / "yoochoose1_1"
    assert lines(full / "train_sessions.txt") == ["1 2 3", "1 2", "3 1 2 3 2"]
    assert lines(full / "test_sessions.txt") == ["3 2 1"]
    # 1/2: the last int(7 / 2) = 3 samples all come from session 13
    assert lines(tmp_path / "yoochoose1_2" / "train_sessions.txt") == ["3 1 2 3 2"]
    assert lines(tmp_path / "yoochoose1_2" / "test_sessions.txt") == ["3 2 1"]
    assert stats["yoochoose1_2_samples_cut"] == 3
    assert stats["dropped_sessions_on_split_date"] == 1


def test_yoochoose_accepts_header(tmp_path):
    raw = tmp_path / "clicks.dat"
    raw.write_text(
        "session_id,timestamp,item_id,category\n"
        + "".join(f"{s},{t},{i},0\n" for s, t, i in YOO_ROWS)
    )
    preprocess_yoochoose(raw, tmp_path, fractions=(1,))
    assert lines(tmp_path / "yoochoose1_1" / "test_sessions.txt") == ["3 2 1"]


def test_bad_raw_input(tmp_path):
    raw = tmp_path / "v.csv"
    raw.write_text(HEADER + "1;NA;10;5;2016-05-01\n1;NA;abc;6;2016-05-01\n")
    with pytest.raises(ValueError, match=r"v\.csv, line 3: item_id 'abc' is not an integer"):
        preprocess_diginetica(raw, tmp_path)
    raw.write_text(HEADER + "1;NA;10;5;2016-13-01\n")
    with pytest.raises(ValueError, match="line 2: eventdate '2016-13-01'"):
        preprocess_diginetica(raw, tmp_path)
    raw.write_text("a;b;c\n1;2;3\n")
    with pytest.raises(ValueError, match="missing column"):
        preprocess_diginetica(raw, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nothere\.csv"):
        preprocess_diginetica(tmp_path / "nothere.csv", tmp_path)
    dat = tmp_path / "c.dat"
    dat.write_text("1,2014-04-01T10:00:00.000Z,5,0\n1,yesterday,6,0\n")
    with pytest.raises(ValueError, match="line 2: timestamp 'yesterday'"):
        preprocess_yoochoose(dat, tmp_path)


def reference_diginetica(path: Path):
    """A plain-loop port of the reference preprocess.py (Diginetica branch)."""
    sess_clicks, sess_date = {}, {}
    with open(path) as f:
        for row in csv.DictReader(f, delimiter=";"):
            sid = row["session_id"]
            sess_clicks.setdefault(sid, []).append((row["item_id"], int(row["timeframe"])))
            sess_date[sid] = time.mktime(time.strptime(row["eventdate"], "%Y-%m-%d"))
    for s in sess_clicks:
        sess_clicks[s] = [c[0] for c in sorted(sess_clicks[s], key=lambda c: c[1])]
    for s in list(sess_clicks):
        if len(sess_clicks[s]) == 1:
            del sess_clicks[s], sess_date[s]
    counts = {}
    for seq in sess_clicks.values():
        for i in seq:
            counts[i] = counts.get(i, 0) + 1
    for s in list(sess_clicks):
        filtered = [i for i in sess_clicks[s] if counts[i] >= 5]
        if len(filtered) < 2:
            del sess_clicks[s], sess_date[s]
        else:
            sess_clicks[s] = filtered
    split = max(sess_date.values()) - 86400 * 7
    train = sorted([x for x in sess_date.items() if x[1] < split], key=lambda x: x[1])
    test = sorted([x for x in sess_date.items() if x[1] > split], key=lambda x: x[1])
    ids, train_seqs, test_seqs = {}, [], []
    for s, _ in train:
        train_seqs.append([ids.setdefault(i, len(ids) + 1) for i in sess_clicks[s]])
    for s, _ in test:
        seq = [ids[i] for i in sess_clicks[s] if i in ids]
        if len(seq) >= 2:
            test_seqs.append(seq)
    return train_seqs, test_seqs


def test_sample_log_matches_reference_loop(shared_data, tmp_path):
    raw = shared_data / "raw" / "diginetica-sample_train-item-views.csv"
    preprocess_diginetica(raw, tmp_path)
    train, test = reference_diginetica(raw)
    out = tmp_path / "diginetica"
    assert lines(out / "train_sessions.txt") == [" ".join(map(str, s)) for s in train]
    assert lines(out / "test_sessions.txt") == [" ".join(map(str, s)) for s in test]
    assert len(train) > 100 and len(test) > 10
