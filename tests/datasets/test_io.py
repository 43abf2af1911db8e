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


def _per_line(monkeypatch, path, min_length):
    """read_sessions through its per-line reader only (the vectorised one off)."""
    import graphrec.datasets.io as io

    with monkeypatch.context() as m:
        m.setattr(io, "_parse_digits", lambda *args, **kwargs: None)
        return io.read_sessions(path, min_length)


def _outcome(read, *args):
    try:
        items, ptr = read(*args)
        return items.tolist(), ptr.tolist()
    except ValueError as e:
        return str(e)


@pytest.mark.parametrize("chunk", [16, 64, 1 << 25])
def test_the_vectorised_reader_equals_the_per_line_one(tmp_path, monkeypatch, chunk):
    """Random files (blanks, tabs, CRLF, trailing blank lines, bad tokens, short and
    blank lines, 18-digit ids, chunks that split the file) read to the same ids,
    boundaries and error messages both ways."""
    import random

    from graphrec.datasets.io import _parse_digits

    rng = random.Random(chunk)
    bad_tokens = ["0", "007", "+3", "-1", "3.0", "x", "9" * 20, "é", "9223372036854775808"]
    for trial in range(300):
        lines = []
        for _ in range(rng.randint(1, 25)):
            tokens = [
                str(rng.choice([1, 9, 10, 12345, 10**17 + 3]))
                for _ in range(rng.choice([0, 1, 2, 3, 6]))
            ]
            if rng.random() < 0.02:
                tokens.insert(rng.randint(0, len(tokens)), rng.choice(bad_tokens))
            line = rng.choice([" ", "\t", "  \t"]).join(tokens)
            lines.append(f" {line} " if rng.random() < 0.1 else line)
        newline = rng.choice(["\n", "\n", "\r\n", "\r"])
        text = newline.join(lines) + rng.choice(["\n", "", "\n\n", "\n \n"])
        path = tmp_path / f"s{trial}.txt"
        path.write_bytes(text.encode())
        min_length = rng.choice([0, 1, 2])

        def vectorised(p, n):
            return _parse_digits(p.read_bytes(), p, n, chunk=chunk) or read_sessions(p, n)

        assert _outcome(vectorised, path, min_length) == _outcome(
            lambda *a: _per_line(monkeypatch, *a), path, min_length
        ), text


def test_a_long_bad_line_is_refused_at_once(tmp_path):
    """60 digits then a letter: the line pattern once backtracked through every way
    of splitting the digits (2^59 of them) before it failed."""
    path = tmp_path / "s.txt"
    path.write_text("1 2 3\n" + "1" * 60 + "x 2\n")
    with pytest.raises(ValueError, match=r"line 2: '111.*x' is not an item id"):
        read_sessions(path)
