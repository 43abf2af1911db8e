"""The long-term history: one more optional field of the one batch."""

import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from graphrec.data import SessionBatch, SessionDataset, collate, session_graph
from graphrec.data.dataset import user_streams
from graphrec.datasets import synthetic

CATEGORY = torch.tensor([0, 1, 1, 2, 2, 3, 3, 3, 3, 3])


@pytest.fixture
def mixed():
    """Empty and non-empty histories side by side."""
    return [
        session_graph([1, 2, 1], target=3, user=1, category=CATEGORY, history=[5, 6, 7]),
        session_graph([4], target=2, user=2, category=CATEGORY, history=[]),
        session_graph([8, 9], target=1, user=1, category=CATEGORY, history=[3]),
    ]


def test_collate_concatenates_and_pads(mixed):
    b = collate(mixed)
    assert b.history.tolist() == [5, 6, 7, 3]
    assert b.history_length.tolist() == [3, 0, 1]
    assert b.history_category.tolist() == [3, 3, 3, 2]
    assert b.history_ptr().tolist() == [0, 3, 3, 4]
    items, mask = b.histories()
    assert items.tolist() == [[5, 6, 7], [0, 0, 0], [3, 0, 0]]
    assert mask.tolist() == [[True] * 3, [False] * 3, [True, False, False]]
    cats, _ = b.histories("history_category")
    assert cats.tolist() == [[3, 3, 3], [0, 0, 0], [2, 0, 0]]
    # the graph part is untouched: item ids are never offset like node indices
    assert b.alias.tolist() == [0, 1, 0, 2, 3, 4]


def test_equals_pyg_batch_and_slices_back(mixed):
    ours, ref = collate(mixed), Batch.from_data_list(mixed)
    assert set(ours.keys()) == set(ref.keys())
    for key in ref.keys():
        assert torch.equal(ours[key], ref[key]), key
    for key in ref._slice_dict:
        assert torch.equal(ours._slice_dict[key], ref._slice_dict[key]), key
        assert torch.equal(ours._inc_dict[key], ref._inc_dict[key]), key
    for i, data in enumerate(mixed):
        back = ours.get_example(i)
        assert back.history.tolist() == data.history.tolist()
        assert back.history_length.tolist() == data.history_length.tolist()
    sub = collate(ours.index_select([2, 1]))  # slicing gives the sessions back
    assert sub.history.tolist() == [3] and sub.history_length.tolist() == [1, 0]


def test_to_device_and_dataloader(mixed):
    b = collate(mixed).to("cpu")
    assert b.history_length.tolist() == [3, 0, 1]
    loaded = next(iter(DataLoader(mixed, batch_size=3)))
    assert isinstance(loaded, SessionBatch)
    assert loaded.histories()[0].tolist() == [[5, 6, 7], [0, 0, 0], [3, 0, 0]]
    plain = next(iter(torch.utils.data.DataLoader(mixed, batch_size=3, collate_fn=collate)))
    assert plain.history.tolist() == [5, 6, 7, 3]


def test_all_histories_empty():
    b = collate([session_graph([1, 2], history=[]), session_graph([3], history=[])])
    items, mask = b.histories()
    assert items.shape == (2, 0) and mask.shape == (2, 0)


def test_no_history_is_a_clear_error():
    with pytest.raises(AttributeError, match="no long-term history"):
        collate([session_graph([1, 2])]).histories()
    with pytest.raises(ValueError, match="session 1 has no 'history'"):
        collate([session_graph([1], history=[2]), session_graph([3])])


def test_user_streams_by_hand():
    # log in time order: s0 = [1, 2] (user 2), s1 = [3] (user 1), s2 = [4, 5, 6] (user 2)
    ptr = torch.tensor([0, 2, 3, 6])
    order, click_pos, floor, user_ptr = user_streams(ptr, torch.tensor([2, 1, 2]))
    items = torch.tensor([1, 2, 3, 4, 5, 6])
    assert items[order].tolist() == [3, 1, 2, 4, 5, 6]  # user 1's stream, then user 2's
    assert click_pos.tolist() == [1, 2, 0, 3, 4, 5]
    assert floor.tolist() == [1, 0, 1]
    assert user_ptr.tolist() == [0, 0, 1, 6]


def test_dataset_histories_by_hand():
    # user 1: session [1, 2] then [3, 4, 5]; user 2: [6, 7]
    items = torch.tensor([1, 2, 6, 7, 3, 4, 5])
    ptr = torch.tensor([0, 2, 4, 7])
    data = SessionDataset.from_sessions(
        items,
        ptr,
        num_items=7,
        max_length=2,
        session_user=torch.tensor([1, 2, 1]),
        history_length=3,
    )
    # samples, longest prefix first per session: ([1],2) | ([6],7) | ([3,4],5), ([3],4)
    assert data.y.tolist() == [2, 7, 5, 4]
    hist = [data[i].history.tolist() for i in range(len(data))]
    assert hist == [[], [], [1, 2], [1, 2]]
    data = SessionDataset.from_sessions(
        items, ptr, num_items=7, max_length=1, session_user=torch.tensor([1, 2, 1]),
        history_length=2,
    )  # fmt: skip
    # the window keeps the last click; what it cuts off precedes it in the history
    assert [data[i].history.tolist() for i in range(len(data))] == [[], [], [2, 3], [1, 2]]
    assert data.user_items[0].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert data.user_items[1].tolist() == [0, 0, 5, 7]
    batch = data.batch([2, 0, 3])
    ref = collate([data[i] for i in (2, 0, 3)])
    for key in ref.keys():
        assert torch.equal(batch[key], ref[key]), key


def test_synthetic_history_and_persistence(tmp_path):
    data = synthetic(num_sessions=300, num_items=100, num_users=20, num_categories=5,
                     history_length=8)  # fmt: skip
    assert data.history_length == 8 and data.num_users == 20
    assert 0.5 < float((data.history[2] > 0).float().mean()) < 1.0
    idx = torch.tensor([5, 100, 3, 250])
    batch = data.batch(idx)
    ref = collate([data[int(i)] for i in idx])
    for key in ref.keys():
        assert torch.equal(batch[key], ref[key]), key
    assert torch.equal(batch.history_category, data.item_category[batch.history])
    data.save(tmp_path / "d.pt")
    back = SessionDataset.load(tmp_path / "d.pt")
    assert torch.equal(back.batch(idx).history, batch.history)
    assert back.num_users == 20
