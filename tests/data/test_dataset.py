import os

import pytest
import torch

from graphrec.data import (
    SessionDataset,
    SessionLoader,
    collate,
    prefix_augment,
    sessions_from_lists,
)


def make(sessions, **kwargs):
    items, ptr = sessions_from_lists(sessions)
    return SessionDataset.from_sessions(items, ptr, num_items=int(items.max()), **kwargs)


def test_prefix_augment_order():
    items, ptr = sessions_from_lists([[1, 2, 3, 4], [5, 6], [7]])
    clicks, lengths, targets, session = prefix_augment(items, ptr)
    # (s[:-i], s[-i]) for i = 1..n-1, longest prefix first; a 1-click session gives nothing
    assert lengths.tolist() == [3, 2, 1, 1]
    assert targets.tolist() == [4, 3, 2, 6]
    assert clicks.tolist() == [1, 2, 3, 1, 2, 1, 5]
    assert session.tolist() == [0, 0, 0, 1]


def test_batch_equals_collate():
    ds = make([[1, 2, 1, 3, 1, 2, 4], [5, 5, 6], [2, 7, 2, 7]], item_category=torch.arange(8) % 3)
    ds.user = torch.arange(len(ds))
    idx = [4, 0, 7, 2, 5]
    fast, ref = ds.batch(idx), collate([ds[i] for i in idx])
    assert set(fast.keys()) == set(ref.keys())
    for key in ref.keys():
        assert torch.equal(fast[key], ref[key]), key
    for key in ref._slice_dict:
        assert torch.equal(fast._slice_dict[key], ref._slice_dict[key]), key
        assert torch.equal(fast._inc_dict[key], ref._inc_dict[key]), key


def test_getitem_contents():
    ds = make([[1, 2, 3, 2, 4]])
    assert len(ds) == 4
    first = ds[0]  # prefix (1, 2, 3, 2) -> 4
    assert first.x.tolist() == [1, 2, 3] and first.alias.tolist() == [0, 1, 2, 1]
    assert first.y.tolist() == [4]
    assert ds[-1].x.tolist() == [1] and ds[-1].y.tolist() == [2]
    with pytest.raises(IndexError):
        ds[4]


def test_max_length_keeps_recent_clicks():
    ds = make([[1, 2, 3, 4, 5]], max_length=2)
    assert [ds[i].x.tolist() for i in range(len(ds))] == [[3, 4], [2, 3], [1, 2], [1]]
    assert ds.y.tolist() == [5, 4, 3, 2]


def test_save_load_roundtrip(tmp_path):
    ds = make([[1, 2, 3, 2, 4], [4, 1]], max_length=3, weighting="count")
    ds.save(tmp_path / "d.pt")
    for mmap in (True, False):
        back = SessionDataset.load(tmp_path / "d.pt", mmap=mmap)
        assert len(back) == len(ds) and back.num_items == ds.num_items
        assert (back.max_length, back.weighting) == (3, "count")
        for key, value in ds.state_dict().items():
            same = torch.equal if torch.is_tensor(value) else (lambda a, b: a == b)
            assert same(back.state_dict()[key], value), key
        assert torch.equal(back.batch([0, 4]).edge_weight_in, ds.batch([0, 4]).edge_weight_in)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="reads /proc/self/maps")
def test_load_maps_the_file_instead_of_reading_it(tmp_path):
    ds = make([[1, 2, 3, 2, 4], [4, 1]] * 100)
    ds.save(tmp_path / "mapped.pt")
    back = SessionDataset.load(tmp_path / "mapped.pt")
    with open("/proc/self/maps") as f:
        assert str(tmp_path / "mapped.pt") in f.read()
    assert torch.equal(back.batch(range(10)).alias, ds.batch(range(10)).alias)
    del back


def test_samples_are_cuts_of_the_sessions():
    items, ptr = sessions_from_lists([[1, 2, 3], [4, 5]])
    ds = SessionDataset((items, ptr), torch.tensor([0, 1, 0]), torch.tensor([2, 1, 1]), 5)
    assert ds.y.tolist() == [3, 5, 2] and ds.lengths.tolist() == [2, 1, 1]
    assert ds[0].x.tolist() == [1, 2] and ds.num_clicks == 4
    with pytest.raises(ValueError, match="at least one click before its cut and a next click"):
        SessionDataset((items, ptr), torch.tensor([0]), torch.tensor([3]), 5)
    with pytest.raises(ValueError, match="at least one click before its cut"):
        SessionDataset((items, ptr), torch.tensor([1]), torch.tensor([0]), 5)
    with pytest.raises(ValueError, match="outside the 2 sessions"):
        SessionDataset((items, ptr), torch.tensor([2]), torch.tensor([1]), 5)
    # with explicit targets a cut may lie at the end: an input without a next click
    served = SessionDataset((items, ptr), torch.tensor([0, 1]), torch.tensor([3, 2]), 5,
                            y=torch.zeros(2, dtype=torch.long))  # fmt: skip
    assert served.batch([0, 1]).x.tolist() == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="its cut inside its session"):
        SessionDataset((items, ptr), torch.tensor([1]), torch.tensor([3]), 5, y=torch.zeros(1))


def test_decode_encode():
    items, ptr = sessions_from_lists([[1, 2, 3]])
    ds = SessionDataset.from_sessions(items, ptr, 3, item_ids=torch.tensor([0, 10, 25, 31]))
    assert ds.decode([1, 3]).tolist() == [10, 31]
    assert ds.encode([31, 10]).tolist() == [3, 1]
    with pytest.raises(ValueError, match=r"unknown item id\(s\) \[11\]"):
        ds.encode([11])
    with pytest.raises(ValueError, match=r"1\.\.3"):
        ds.decode([0])


def test_loader_deterministic_and_resumable():
    ds = make([list(range(1, 12)), list(range(3, 9))])
    loader = SessionLoader(ds, batch_size=4, shuffle=True, seed=3)
    assert len(loader) == 4
    loader.set_epoch(2)
    full = [b.y.tolist() for b in loader]
    assert sorted(y for b in full for y in b) == sorted(ds.y.tolist())
    assert [b.y.tolist() for b in loader.iter_from(2)] == full[2:]
    loader.set_epoch(3)
    assert [b.y.tolist() for b in loader] != full


def _assert_same_batch(got, ref):
    assert type(got) is type(ref)
    assert set(got.keys()) == set(ref.keys())
    for key in ref.keys():
        assert torch.equal(got[key], ref[key]), key
    assert got.num_graphs == ref.num_graphs
    assert got._slice_dict.keys() == ref._slice_dict.keys()
    for key in ref._slice_dict:
        assert torch.equal(got._slice_dict[key], ref._slice_dict[key]), key
        assert torch.equal(got._inc_dict[key], ref._inc_dict[key]), key


def test_through_pyg_dataloader_equals_samples_one_by_one():
    from torch_geometric.data import Batch
    from torch_geometric.loader import DataLoader

    ds = make([[1, 2, 1, 3, 1, 2, 4], [5, 5, 6], [2, 7, 2, 7]], item_category=torch.arange(8) % 3)
    ds.user = torch.arange(len(ds))
    order = [4, 0, 7, 2, 5, 1]
    loaded = list(DataLoader(ds, batch_size=4, sampler=order))
    assert [b.num_graphs for b in loaded] == [4, 2]
    for got, idx in zip(loaded, (order[:4], order[4:]), strict=True):
        ref = Batch.from_data_list([ds[i] for i in idx])  # PyG's own per-sample collation
        _assert_same_batch(got, ref)
        assert "precollated" not in got
        back = got.to_data_list()
        assert [d.x.tolist() for d in back] == [ds[i].x.tolist() for i in idx]
        assert [d.alias.tolist() for d in back] == [ds[i].alias.tolist() for i in idx]


def test_fetch_is_batched_and_can_be_turned_off():
    from torch_geometric.data import Batch
    from torch_geometric.loader import DataLoader

    ds = make([[1, 2, 1, 3, 1, 2, 4], [5, 5, 6], [2, 7, 2, 7]])
    fetched = ds.__getitems__([3, 1, 2])
    assert len(fetched) == 1  # one placeholder carrying the whole batch
    _assert_same_batch(collate(fetched), ds.batch([3, 1, 2]))
    for _ in range(2):  # PyG's collate of the same placeholder, twice
        again = Batch.from_data_list(fetched)
        _assert_same_batch(again, ds.batch([3, 1, 2]))
        assert "precollated" not in again and "_adopting" not in again.__dict__
    # a torch loader with graphrec's collate, and a Subset, take the same path
    plain = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)
    _assert_same_batch(next(iter(plain)), ds.batch([0, 1, 2]))
    subset = torch.utils.data.Subset(ds, [5, 4])
    _assert_same_batch(next(iter(DataLoader(subset, batch_size=2))), ds.batch([5, 4]))
    # off: torch fetches samples one by one, as a custom collate_fn expects
    ds.precollate = False
    assert ds.__getitems__ is None
    seen = next(iter(torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=list)))
    assert len(seen) == 3 and seen[1].y.tolist() == ds[1].y.tolist()
    _assert_same_batch(next(iter(DataLoader(ds, batch_size=3))), ds.batch([0, 1, 2]))


def test_pyg_dataloader_in_worker_processes():
    from torch_geometric.loader import DataLoader

    ds = make([[1, 2, 1, 3, 1, 2, 4], [5, 5, 6], [2, 7, 2, 7]])
    got = list(DataLoader(ds, batch_size=3, num_workers=1))
    for b, start in zip(got, (0, 3, 6), strict=False):
        _assert_same_batch(b, ds.batch(list(range(start, min(start + 3, len(ds))))))


def test_subsets_by_slice_list_tensor_and_mask():
    from graphrec.datasets import synthetic

    data = synthetic(num_sessions=120, num_items=50, num_categories=4, num_users=6,
                     history_length=3)  # fmt: skip
    picks = [slice(3, 12, 2), [7, 3, 7], torch.tensor([5, 0]), torch.arange(len(data)) < 4]
    for pick in picks:
        sub = data[pick]
        expected = torch.arange(len(data))[pick]
        assert len(sub) == expected.numel()
        ours, theirs = sub.batch(torch.arange(len(sub))), data.batch(expected)
        assert set(ours.keys()) == set(theirs.keys())
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs.keys())
        assert torch.equal(sub.item_ids, data.item_ids) and sub.num_users == data.num_users
    empty = data[0:0]
    assert len(empty) == 0 and empty.num_items == data.num_items
    with pytest.raises(TypeError, match="indexed by an integer, a slice"):
        data[1.5]
    with pytest.raises(IndexError, match="out of range"):
        data[[len(data)]]


def test_a_long_session_is_stored_once(tmp_path):
    """A 3,000-click session has ~n^2/2 = 4.5 M clicks in its prefixes; the dataset
    stores its 3,000 clicks and two integers per sample, and builds a prefix's
    graph when it is drawn (with a window, of the window's clicks only)."""
    from graphrec.datasets import load_dataset

    gen = torch.Generator().manual_seed(0)
    lines = [" ".join(map(str, torch.randint(1, 40, (5,), generator=gen).tolist()))] * 30
    lines.insert(7, " ".join(map(str, torch.randint(1, 40, (3000,), generator=gen).tolist())))
    (tmp_path / "train_sessions.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "test_sessions.txt").write_text("\n".join(lines[:5]) + "\n")
    data = load_dataset(tmp_path, "train", valid_fraction=0, cache=False)
    assert len(data) == 30 * 4 + 2999 and data.num_clicks == 30 * 10 + 2999 * 3000 // 2
    stored = sum(v.numel() for v in data.state_dict().values() if isinstance(v, torch.Tensor))
    assert stored < 4 * len(data) + 3300 + 100  # clicks + ptr + 3 per sample + items
    longest = int(data.lengths.argmax())
    batch = data.batch([longest])
    assert batch.alias.numel() == 2999  # the session starts after 7 of 5 clicks
    assert torch.equal(batch.x[batch.alias], data.sessions[0][35 : 35 + 2999])
    windowed = load_dataset(tmp_path, "train", valid_fraction=0, cache=False, max_length=50)
    assert int(windowed.lengths.max()) == 50 and windowed.batch([longest]).alias.numel() == 50


def test_prefix_samples_match_the_augmentation():
    from graphrec.data.dataset import prefix_samples

    items = torch.tensor([1, 2, 3, 4, 5, 6])
    ptr = torch.tensor([0, 4, 6])
    lengths, session = prefix_samples(ptr)
    _, aug_lengths, _, aug_session = prefix_augment(items, ptr)
    assert torch.equal(lengths, aug_lengths) and torch.equal(session, aug_session)
    assert lengths.tolist() == [3, 2, 1, 1]


# -- side fields ---------------------------------------------------------------------
def with_fields(**extra):
    base = make([[1, 2, 3, 4], [2, 5], [3, 1, 2]])
    n = len(base)
    fields = dict(
        item_features={
            "brand": torch.tensor([0, 1, 2, 1, 0, 2]),
            "genre": torch.tensor([[0, 0], [1, 2], [3, 0], [0, 0], [2, 2], [1, 0]]),
        },
        context={"hour": torch.arange(1, n + 1)},
    )
    fields.update(extra)
    return SessionDataset(
        base.sessions, base.sample_session, base.target_position, base.num_items, **fields
    )


def test_context_travels_with_every_sample():
    data = with_fields()
    index = [4, 0, 2]
    batch = data.batch(index)
    assert batch.context_hour.tolist() == [5, 1, 3]  # the samples' own, in batch order
    assert data[4].context_hour.tolist() == [5]
    ref = collate([data[i] for i in index])
    assert torch.equal(ref.context_hour, batch.context_hour)
    assert [d.context_hour.item() for d in batch.to_data_list()] == [5, 1, 3]
    sub = data[1:3]
    assert sub.context["hour"].tolist() == [2, 3]
    assert sub.item_features["genre"].shape == (6, 2)
    assert "context_hour" not in make([[1, 2, 3]]).batch([0])  # unchanged without fields


def test_collate_refuses_mixed_context():
    data = with_fields()
    other = make([[1, 2, 3]])
    with pytest.raises(ValueError, match="context fields"):
        collate([data[0], other[0]])


def test_fields_survive_save_and_load(tmp_path):
    data = with_fields(user_features=None)
    data.save(tmp_path / "d.pt")
    back = SessionDataset.load(tmp_path / "d.pt")
    assert back.item_features["brand"].shape == (6, 1)  # a 1-D table is one column
    assert torch.equal(back.item_features["genre"], data.item_features["genre"])
    assert torch.equal(back.context["hour"], data.context["hour"])
    assert back.user_features == {}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"item_features": {"brand": torch.tensor([0, 1, 2])}}, r"brand.*6 rows"),
        ({"item_features": {"brand": torch.tensor([1, 1, 2, 1, 0, 2])}}, "row 0"),
        ({"item_features": {"brand": torch.tensor([0, -1, 2, 1, 0, 2])}}, ">= 0"),
        ({"item_features": {"brand": torch.tensor([0.0, 1, 2, 1, 0, 2])}}, "integers"),
        ({"item_features": {"shop id": torch.zeros(6, dtype=torch.long)}}, "identifier"),
        ({"context": {"hour": torch.tensor([1, 2])}}, "one value per sample"),
    ],
)
def test_bad_fields_are_refused(extra, message):
    with pytest.raises(ValueError, match=message):
        with_fields(**extra)
