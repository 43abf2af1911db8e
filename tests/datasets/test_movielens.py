import pytest
import torch

from graphrec.datasets import load_dataset
from graphrec.datasets.movielens import EXPECTED, load_movielens, time_context, utc_hour_weekday

GENRES = "|".join(["0"] * 19)


def flags(*on: int) -> str:
    return "|".join("1" if g in on else "0" for g in range(19))


def tiny(tmp_path, data=None, item=None, user=None):
    """A 3-user, 4-movie sample of the GroupLens files (u.item in Latin-1)."""
    folder = tmp_path / "ml-100k"
    folder.mkdir(exist_ok=True)
    ratings = data or [
        # user, item, rating, time; user 7's two ratings at 100 tie: file order decides
        (7, 20, 5, 300), (7, 10, 3, 100), (7, 30, 4, 100), (7, 40, 1, 90000),
        (9, 10, 2, 50), (9, 20, 4, 60), (9, 40, 3, 70),
        (8, 30, 3, 10), (8, 10, 3, 20), (8, 20, 5, 30), (8, 40, 5, 40),
    ]  # fmt: skip
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ratings))
    items = item or [
        f"10|Caf\xe9 (1995)|01-Jan-1995||http://x|{flags(3, 5)}",
        f"20|Old (1931)|01-Jan-1931||http://x|{flags(8)}",
        f"30|Undated|||http://x|{flags(0)}",
        f"40|New (1998)|20-Mar-1998||http://x|{GENRES}",
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    users = user or ["7|17|M|student|111", "8|40|F|writer|222", "9|61|M|other|333"]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    (folder / "u.occupation").write_text("other\nstudent\nwriter\n")
    return tmp_path


def test_sequences_fields_and_context_by_hand(tmp_path):
    root = tiny(tmp_path)
    test = load_movielens(root, "test", check_counts=False)
    # items 10, 20, 30, 40 -> 1..4; users 7, 8, 9 -> 1..3
    # user 7 by time, ties in file order: 10 (100), 30 (100), 20 (300), 40 (90000)
    assert test.y.tolist() == [4, 4, 4]
    assert test.decode(test.y).tolist() == [40, 40, 40]
    valid = load_movielens(root, "valid", check_counts=False)
    assert valid.decode(valid.y).tolist() == [20, 20, 20]
    train = load_movielens(root, "train", check_counts=False)
    # users 7 and 8 train on their first two items; user 9 (3 ratings) on one: no sample
    assert train.decode(train.y).tolist() == [30, 10]
    genre = test.item_features["genre"]
    assert genre.tolist() == [[0, 0], [4, 6], [9, 0], [1, 0], [0, 0]]  # flag g -> value g + 1
    # years: 1995 -> 7, 1931 -> 1 (before 1950), no date -> 0, 1998 -> 10
    assert test.item_features["year"].view(-1).tolist() == [0, 7, 1, 0, 10]
    assert test.user_features["age"].view(-1).tolist() == [0, 1, 4, 7]  # 17, 40, 61
    assert test.user_features["gender"].view(-1).tolist() == [0, 1, 2, 1]
    assert test.user_features["occupation"].view(-1).tolist() == [0, 2, 3, 1]
    # user 7's test rating at t = 90000: 01:00 UTC on Friday 2 January 1970
    assert test.context["hour"][0] == 2 and test.context["weekday"][0] == 5
    assert utc_hour_weekday(90000) == (2, 5)
    assert test.context_sizes == {"hour": 24, "weekday": 7}


def test_time_context_matches_the_calendar():
    times = torch.tensor([0, 3599, 3600, 86400 * 4, 874965478])
    ctx = time_context(times)
    expected = [utc_hour_weekday(int(t)) for t in times]
    assert list(zip(ctx["hour"].tolist(), ctx["weekday"].tolist(), strict=True)) == expected


@pytest.mark.parametrize(
    ("kind", "lines", "message"),
    [
        ("data", [(7, 10, 5, 1), (7, "x", 5, 2)], r"u\.data, line 2: item id 'x'"),
        ("item", ["10|A|01-Jan-1995||u|" + flags(1), "20|B|1995||u|" + flags(1),
                  "30|C|||u|" + flags(1), "40|D|||u|" + flags(1)],
         r"u\.item, line 2: release date '1995'"),
        ("item", ["10|A|01-Jan-1995||u|" + flags(1)], r"no line for the rated item\(s\) \[20"),
        ("user", ["7|17|X|student|1", "8|40|F|writer|2", "9|61|M|other|3"],
         r"u\.user, line 1: gender 'X'"),
        ("user", ["7|17|M|pilot|1", "8|40|F|writer|2", "9|61|M|other|3"],
         r"line 1: occupation 'pilot' is not in u\.occupation"),
        ("user", ["7|17|M|student", "8|40|F|writer|2"], r"u\.user, line 1: expected 5 fields"),
    ],
)  # fmt: skip
def test_malformed_files_are_named(tmp_path, kind, lines, message):
    if kind == "data":
        root = tiny(tmp_path, data=lines)
    else:
        root = tiny(tmp_path, **{kind: lines})
    with pytest.raises(ValueError, match=message):
        load_movielens(root, "test", check_counts=False)


def test_counts_are_checked_and_missing_files_named(tmp_path):
    with pytest.raises(ValueError, match="unexpected counts"):
        load_movielens(tiny(tmp_path), "test")
    with pytest.raises(FileNotFoundError, match="MovieLens 100K"):
        load_movielens(tmp_path / "nowhere", "test")


def test_real_movielens(shared_data):
    if not (shared_data / "ml-100k" / "u.data").is_file():
        pytest.skip("ml-100k not found")
    splits = {
        s: load_dataset("ml-100k", split=s, root=shared_data) for s in ("train", "valid", "test")
    }
    assert len(splits["valid"]) == len(splits["test"]) == EXPECTED["test"] == 943
    assert len(splits["train"]) == 100_000 - 3 * 943
    train = splits["train"]
    assert train.num_items == 1682 and train.num_users == 943
    toy_story = int(train.encode([1])[0])
    assert sorted(v for v in train.item_features["genre"][toy_story].tolist() if v) == [4, 5, 6]
    assert {k: int(v.max()) for k, v in train.user_features.items()} == {
        "age": 7, "gender": 2, "occupation": 21,
    }  # fmt: skip
    assert train.context_sizes == {"hour": 24, "weekday": 7}
