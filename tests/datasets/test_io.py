import os
import pickle

import pytest
import torch

from graphrec.datasets import read_sessions, read_srgnn_pickle, write_sessions


def test_trailing_blank_lines_are_accepted(tmp_path):
    (tmp_path / "s.txt").write_text("3 1 2\n7 7\n\n  \n")
    items, ptr = read_sessions(tmp_path / "s.txt")
    assert items.tolist() == [3, 1, 2, 7, 7] and ptr.tolist() == [0, 3, 5]


def test_read_write_roundtrip(tmp_path):
    write_sessions(tmp_path / "s.txt", [[3, 1, 2], [7, 7]])
    items, ptr = read_sessions(tmp_path / "s.txt")
    assert items.tolist() == [3, 1, 2, 7, 7] and ptr.tolist() == [0, 3, 5]


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "the file is empty"),
        ("1 2\n\n3 4\n", "line 2: blank line"),
        ("1 2\n3 x 4\n", "line 2: 'x' is not an item id"),
        ("1 2\n3 1.5\n", "line 2: '1.5' is not an item id"),
        ("1 2\n3 0\n", "line 2: '0' is not an item id"),
        ("1 2\n-4 3\n", "line 2: '-4' is not an item id"),
        ("1 2\n+3 4\n", "line 2: '\\+3' is not an item id"),
        ("1 2\n3 04\n", "line 2: '04' is not an item id"),
        ("1 2\n5\n", "line 2: session of 1 click"),
        ("1 2\n3 99999999999999999999\n", "line 2: an item id does not fit in 64 bits"),
        ("\n\n", "the file is empty"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        read_sessions(path)
    assert "bad.txt" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        read_sessions(tmp_path / "nope.txt")


def test_srgnn_pickle_roundtrip(tmp_path):
    data = ([[1, 2], [3, 4, 5]], [6, 7])
    (tmp_path / "test.txt").write_bytes(pickle.dumps(data, protocol=2))
    assert read_srgnn_pickle(tmp_path / "test.txt") == data


class Hostile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "all_train_seq.txt"
    path.write_bytes(pickle.dumps([[1, 2], Hostile(marker)]))
    with pytest.raises(ValueError, match=r"refusing to load global '(posix|os)\.system'"):
        read_srgnn_pickle(path)
    assert not marker.exists()


def test_pickle_with_foreign_plain_types(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(pickle.dumps([[1, 2], {"a": 1}]))
    with pytest.raises(ValueError, match="found a dict"):
        read_srgnn_pickle(path)
    path.write_bytes(pickle.dumps([[1, 2.5]]))
    with pytest.raises(ValueError, match="found a float"):
        read_srgnn_pickle(path)


def test_real_pickles_match_text_files(shared_data):
    """Augmenting the shared text files reproduces the original test.txt exactly."""
    from graphrec.data import prefix_augment

    legacy = shared_data / "sr-gnn-format" / "diginetica"
    prefixes, targets = read_srgnn_pickle(legacy / "test.txt")
    items, ptr = read_sessions(shared_data / "diginetica" / "test_sessions.txt")
    clicks, lengths, tgt, _ = prefix_augment(items, ptr)
    assert len(prefixes) == 60858
    assert tgt.tolist() == list(targets)
    assert lengths.tolist() == [len(p) for p in prefixes]
    assert clicks.tolist() == [i for p in prefixes for i in p]
    sessions = read_srgnn_pickle(legacy / "all_train_seq.txt")
    items, ptr = read_sessions(shared_data / "diginetica" / "train_sessions.txt")
    assert ptr.numel() - 1 == len(sessions) == 186670
    assert items.tolist() == [i for s in sessions for i in s]
    assert torch.equal(ptr.diff(), torch.tensor([len(s) for s in sessions]))


def test_byte_order_mark_and_bad_bytes(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(b"\xef\xbb\xbf1 2 3\n4 5\n")
    items, ptr = read_sessions(path)  # the mark is not taken for part of an id
    assert items.tolist() == [1, 2, 3, 4, 5] and ptr.tolist() == [0, 3, 5]
    path.write_bytes(b"1 2 3\n4 \xff5\n")
    with pytest.raises(ValueError, match=r"s.txt, line 2, column 3: byte 0xff is not valid"):
        read_sessions(path)
