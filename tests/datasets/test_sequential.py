import pytest
import torch

from graphrec.datasets import leave_one_out, load_dataset, load_sequential, read_interactions
from graphrec.datasets.sequential import EXPECTED


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_leave_one_out_by_hand():
    ptr = torch.tensor([0, 5, 7, 10])  # users of 5, 2 and 3 interactions
    seq, pre, train_len = leave_one_out(ptr, "test")
    assert seq.tolist() == [0, 2] and pre.tolist() == [4, 2]
    seq, pre, _ = leave_one_out(ptr, "valid")
    assert seq.tolist() == [0, 2] and pre.tolist() == [3, 1]
    seq, pre, _ = leave_one_out(ptr, "train")
    # user 0 trains on its first 3 items, user 1 (< 3) on both, user 2 on its first 1
    assert seq.tolist() == [0, 0, 1] and pre.tolist() == [2, 1, 1]
    assert train_len.tolist() == [3, 2, 1]
    seq, pre, _ = leave_one_out(ptr, "train", valid=False)
    assert seq.tolist() == [0, 0, 0, 1, 2] and pre.tolist() == [3, 2, 1, 1, 1]
    with pytest.raises(ValueError, match="validation target"):
        leave_one_out(ptr, "valid", valid=False)


def test_read_interactions_errors(tmp_path):
    user, item = read_interactions(write(tmp_path / "ok.txt", "1 5\n1 6\n2 5\n\n"))
    assert user.tolist() == [1, 1, 2] and item.tolist() == [5, 6, 5]
    for text, message in [
        ("1 5\n1 6 7\n", "line 2: expected 'user item', got 3 field"),
        ("1 5\n2 x\n", "line 2: item id 'x' is not a positive integer"),
        ("1 5\n0 3\n", "line 2: user id '0' is not a positive integer"),
        ("1 5\n1 +3\n", r"line 2: item id '\+3'"),
        ("", "the file is empty"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_interactions(write(tmp_path / "bad.txt", text))
    with pytest.raises(FileNotFoundError):
        read_interactions(tmp_path / "missing.txt")


def test_real_counts_and_leakage(shared_data):
    if not (shared_data / "amazon-games" / "Video.txt").is_file():
        pytest.skip("amazon-games not present")
    test = load_sequential("amazon-games", root=shared_data, split="test", history_length=20)
    valid = load_sequential("amazon-games", root=shared_data, split="valid")
    train = load_dataset("amazon-games", "train", root=shared_data)
    expected = EXPECTED["amazon-games"]
    assert len(test) == expected["test"] and len(valid) == expected["valid"]
    assert test.num_items == expected["items"] and test.num_users == expected["users"]
    assert len(train) == 194292  # every prefix of the first n - 2 items of every user
    # the test input of a user ends with its validation target
    b_test, b_valid = test.batch([0]), valid.batch([0])
    assert b_test.sequences()[0][0, -1] == b_valid.y[0]
    assert train.item_counts().sum() == expected["interactions"] - 2 * expected["test"]
    # history = what precedes the 50-click window, never the target
    long = int(torch.argmax(test.history[2]))
    data = test[long]
    assert data.history_length.item() > 0 and data.alias.numel() == 50
