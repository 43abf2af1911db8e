import zipfile
from pathlib import Path

import pytest
import torch

from graphrec.datasets import load_benchmark, split_sessions, write_sessions


@pytest.fixture
def root(tmp_path):
    # sparse original ids, as in YooChoose; 10 training sessions, 2 test sessions
    train = [[100, 300], [300, 500, 100], [700, 100]] + [[100, 300, 700]] * 6 + [[500, 700, 900]]
    write_sessions(tmp_path / "yoochoose1_64" / "train_sessions.txt", train)
    write_sessions(tmp_path / "yoochoose1_64" / "test_sessions.txt", [[300, 100, 800], [900, 700]])
    return tmp_path


def test_counts_and_remap(root):
    ds = load_benchmark("yoochoose1_64", root=root, split="train", valid_fraction=0, cache=False)
    # 1 + 2 + 1 + 6 * 2 + 2 samples
    assert len(ds) == 18
    # catalogue: train items plus the test-only item 800, sorted
    assert ds.num_items == 6
    assert ds.item_ids.tolist() == [0, 100, 300, 500, 700, 800, 900]
    assert ds[0].x.tolist() == [1] and ds[0].y.tolist() == [2]
    assert ds.decode(ds.y[:3]).tolist() == [300, 100, 500]


def test_valid_split_is_last_sessions(root):
    train = load_benchmark("yoochoose1_64", root=root, split="train", cache=False)
    valid = load_benchmark("yoochoose1_64", root=root, split="valid", cache=False)
    # 10 sessions, valid_fraction 0.1 -> the last session (500, 700, 900)
    assert len(valid) == 2 and valid.decode(valid.y).tolist() == [900, 700]
    assert len(train) == 16
    test = load_benchmark("yoochoose1_64", root=root, split="test", cache=False)
    assert test.decode(test.y).tolist() == [800, 100, 700]


def test_split_sessions():
    tr, va = split_sessions(10, 0.3)
    assert va.tolist() == [7, 8, 9] and tr.tolist() == list(range(7))
    tr, va = split_sessions(10, 0.3, "random", seed=1)
    assert len(va) == 3 and sorted(tr.tolist() + va.tolist()) == list(range(10))
    assert torch.equal(va, split_sessions(10, 0.3, "random", seed=1)[1])
    assert split_sessions(10, 0)[1].numel() == 0
    with pytest.raises(ValueError, match="valid_fraction"):
        split_sessions(10, 1.0)
    with pytest.raises(ValueError, match="valid_mode"):
        split_sessions(10, 0.1, "first")


def test_cache_is_used_and_rebuilt_on_change(root):
    first = load_benchmark("yoochoose1_64", root=root, split="test")
    cached = list((root / "yoochoose1_64" / "processed").glob("*.pt"))
    assert len(cached) == 1 and "test-last0.1-binary-lenNone" in cached[0].name
    again = load_benchmark("yoochoose1_64", root=root, split="test")
    assert torch.equal(first.y, again.y)
    write_sessions(root / "yoochoose1_64" / "test_sessions.txt", [[300, 100]])
    changed = load_benchmark("yoochoose1_64", root=root, split="test")
    assert len(changed) == 1


def test_cache_dir(root, tmp_path):
    load_benchmark("yoochoose1_64", root=root, split="test", cache_dir=tmp_path / "c")
    assert len(list((tmp_path / "c").glob("yoochoose1_64-*.pt"))) == 1
    assert not (root / "yoochoose1_64" / "processed").exists()


def test_errors(root, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("movielens", root=root)
    with pytest.raises(ValueError, match="split must be one of"):
        load_benchmark("yoochoose1_64", root=root, split="dev")
    with pytest.raises(FileNotFoundError, match="graphrec preprocess diginetica"):
        load_benchmark("diginetica", root=root)
    monkeypatch.setenv("GRAPHREC_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        load_benchmark("yoochoose1_4")
    with pytest.raises(ValueError, match="valid_fraction > 0"):
        load_benchmark("yoochoose1_64", root=root, split="valid", valid_fraction=0)


def test_default_root_is_env(root, monkeypatch):
    monkeypatch.setenv("GRAPHREC_DATA", str(root))
    assert len(load_benchmark("yoochoose1_64", split="test", cache=False)) == 3


EXPECTED = {
    # name: (train sessions, train samples, test sessions, test samples, items)
    "diginetica": (186670, 719470, 15963, 60858, 43097),
    "yoochoose1_64": (116167, 369859, 15324, 55898, 17745),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_counts(shared_data, name):
    n_tr_s, n_tr, n_te_s, n_te, n_items = EXPECTED[name]
    train = load_benchmark(name, root=shared_data, valid_fraction=0, cache=False)
    test = load_benchmark(name, root=shared_data, split="test", cache=False)
    assert len(train) == n_tr and len(test) == n_te
    assert train.sessions[1].numel() - 1 == n_tr_s and test.sessions[1].numel() - 1 == n_te_s
    assert train.num_items == n_items
    if name == "diginetica":  # compact already: identity map
        assert torch.equal(train.item_ids, torch.arange(n_items + 1))
    else:
        assert int(train.item_ids.max()) == 37483
    n = train.sessions[1].diff()
    assert train.num_clicks == int((n * (n - 1) // 2).sum())  # every prefix, once


def test_cache_of_an_older_format_is_rebuilt(root):
    first = load_benchmark("yoochoose1_64", root=root, split="test")
    (cached,) = (root / "yoochoose1_64" / "processed").glob("*.pt")
    state = torch.load(cached, weights_only=True)
    state["dataset"]["format_version"] = 1
    state["dataset"]["y"] = state["dataset"]["y"] + 1  # would show if it were read back
    torch.save(state, cached)
    again = load_benchmark("yoochoose1_64", root=root, split="test")
    assert torch.equal(first.y, again.y)


class Hostile:
    def __reduce__(self):
        return (exec, ("raise SystemExit('hostile cache executed')",))


def _flip_a_byte_of_the_targets(cached: Path) -> None:
    """One bit of the stored ``y`` flipped, the archive otherwise intact: the
    file still loads (torch does not check its archive's CRCs)."""
    state = torch.load(cached, weights_only=True)
    raw = bytearray(cached.read_bytes())
    y = state["dataset"]["y"]
    with zipfile.ZipFile(cached) as archive:
        (info,) = [
            i for i in archive.infolist()
            if "/data/" in i.filename and archive.read(i) == y.numpy().tobytes()
        ]  # fmt: skip
    local = info.header_offset  # the local header's name and extra-field lengths
    names, extra = (int.from_bytes(raw[local + i : local + i + 2], "little") for i in (26, 28))
    offset = local + 30 + names + extra
    raw[offset + 8] ^= 0x01
    cached.write_bytes(bytes(raw))
    assert not torch.equal(torch.load(cached, weights_only=True)["dataset"]["y"], y)


@pytest.mark.parametrize("content", ["truncated", "hostile", "garbage", "bitflip"])
def test_corrupt_or_hostile_cache_is_named_and_rebuilt(root, content, caplog):
    first = load_benchmark("yoochoose1_64", root=root, split="test")
    (cached,) = (root / "yoochoose1_64" / "processed").glob("*.pt")
    if content == "bitflip":
        _flip_a_byte_of_the_targets(cached)
    elif content == "truncated":
        cached.write_bytes(cached.read_bytes()[:100])
    elif content == "hostile":
        torch.save({"checksums": Hostile()}, cached)
    else:
        cached.write_text("not a torch file")
    with caplog.at_level("WARNING", logger="graphrec.datasets"):
        again = load_benchmark("yoochoose1_64", root=root, split="test")
    assert torch.equal(first.y, again.y)
    assert f"processed cache {cached} is unreadable" in caplog.text
    assert "rebuilding it" in caplog.text
    assert "weights_only" not in caplog.text  # never torch's advice to run the file's code
    # rebuilt: read back silently the next time
    caplog.clear()
    load_benchmark("yoochoose1_64", root=root, split="test")
    assert "unreadable" not in caplog.text
