"""Torch files are read weights-only, with graphrec's own messages."""

import os
import pickle
import warnings

import pytest
import torch

from graphrec.serialization import UnsafeFileError, safe_torch_load


class Hostile:
    def __reduce__(self):
        return (os.system, ("echo hostile > /dev/null",))


def test_hostile_pickles_are_refused_by_name(tmp_path):
    path = tmp_path / "hostile.pt"
    torch.save({"x": Hostile()}, path)
    with pytest.raises(UnsafeFileError, match="refused: not a weights-only file") as err:
        safe_torch_load(path)
    assert "system" in str(err.value) and "weights_only=False" not in str(err.value)


def test_a_bare_pickle_is_refused_without_torchs_warning(tmp_path):
    path = tmp_path / "proto4.pt"
    with open(path, "wb") as f:
        pickle.dump(Hostile(), f, protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UnsafeFileError, match="a bare pickle, not a weights-only torch file"):
            safe_torch_load(path)
    assert not caught  # torch's "Detected pickle protocol 4" does not leak


def test_garbage_and_truncated_files(tmp_path):
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(UnsafeFileError, match="not a torch file"):
        safe_torch_load(tmp_path / "text.pt")
    torch.save({"a": torch.zeros(100)}, tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsafeFileError, match="truncated or corrupt"):
        safe_torch_load(tmp_path / "cut.pt")
    assert torch.equal(safe_torch_load(tmp_path / "good.pt")["a"], torch.zeros(100))
    with pytest.raises(FileNotFoundError):
        safe_torch_load(tmp_path / "missing.pt")
