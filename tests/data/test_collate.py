import pytest
import torch
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader

from graphrec.data import SessionBatch, SessionData, collate, session_graph


@pytest.fixture
def three():
    return [
        session_graph([1, 2, 1, 3, 1, 2], target=5, user=0),
        session_graph([5, 5, 6], target=1, user=1),
        session_graph([7], target=2, user=2),
    ]


def test_offsets(three):
    b = collate(three)
    assert isinstance(b, SessionBatch)
    assert b.num_sessions == 3
    assert b.x.tolist() == [1, 2, 3, 5, 6, 7]
    assert b.batch.tolist() == [0, 0, 0, 1, 1, 2]
    assert b.ptr.tolist() == [0, 3, 5, 6]
    # alias is offset like a node index
    assert b.alias.tolist() == [0, 1, 0, 2, 0, 1, 3, 3, 4, 5]
    assert b.y.tolist() == [5, 1, 2]
    assert b.user.tolist() == [0, 1, 2]
    # edges of session 2 (5->5, 5->6) are shifted by 3 nodes
    edges = {tuple(e) for e in b.edge_index.t().tolist()}
    assert {(3, 3), (3, 4)} <= edges
    assert b.edge_index.size(1) == 6


def test_sequences(three):
    items, mask = collate(three).sequences()
    assert items.tolist() == [[1, 2, 1, 3, 1, 2], [5, 5, 6, 0, 0, 0], [7, 0, 0, 0, 0, 0]]
    assert mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3, [True] + [False] * 5]


def test_last_click(three):
    b = collate(three)
    assert b.last_click().tolist() == [1, 4, 5]
    assert b.x[b.last_click()].tolist() == [2, 6, 7]


def test_click_ptr_from_slices_equals_counted(three):
    # a batch reads its click boundaries off the collation's slices; a batch
    # without them (or elsewhere than they are) counts the clicks
    b = collate(three)
    assert b.click_ptr() is b._slice_dict["alias"]
    assert b.click_ptr().tolist() == [0, 6, 9, 10]
    del b.__dict__["_slice_dict"]
    assert b.click_ptr().tolist() == [0, 6, 9, 10]
    assert b.last_click().tolist() == [1, 4, 5]
    pyg = next(iter(DataLoader(three, batch_size=2)))
    assert pyg.click_ptr().tolist() == [0, 6, 9]
    assert three[0].click_ptr().tolist() == [0, 6]  # one session


def test_chain_edge_index(three):
    ei = collate(three).chain_edge_index()
    assert ei.tolist() == [[0, 1, 2, 3, 4, 6, 7], [1, 2, 3, 4, 5, 7, 8]]


def test_single_session_methods():
    g = session_graph([4, 4, 2])
    items, mask = g.sequences()
    assert items.tolist() == [[4, 4, 2]] and mask.all()
    assert g.last_click().tolist() == [1]
    assert g.chain_edge_index().tolist() == [[0, 1], [1, 2]]


def test_equals_pyg_batch(three):
    ours, ref = collate(three), Batch.from_data_list(three)
    assert type(ours) is type(ref)
    assert set(ours.keys()) == set(ref.keys())
    for key in ref.keys():
        assert torch.equal(ours[key], ref[key]), key
    for d in (ours._slice_dict, ours._inc_dict):
        ref_d = ref._slice_dict if d is ours._slice_dict else ref._inc_dict
        assert d.keys() == ref_d.keys()
        for key in d:
            assert torch.equal(d[key], ref_d[key]), key
    back = ours.get_example(1)
    assert isinstance(back, SessionData)
    assert back.x.tolist() == [5, 6] and back.alias.tolist() == [0, 0, 1]


def test_through_pyg_dataloader(three):
    b = next(iter(DataLoader(three, batch_size=3)))
    assert isinstance(b, SessionBatch)
    assert b.last_click().tolist() == [1, 4, 5]
    assert b.sequences()[0][1].tolist() == [5, 5, 6, 0, 0, 0]


def test_through_torch_dataloader(three):
    b = next(iter(torch.utils.data.DataLoader(three, batch_size=3, collate_fn=collate)))
    assert b.alias.tolist() == [0, 1, 0, 2, 0, 1, 3, 3, 4, 5]


def test_errors():
    with pytest.raises(ValueError, match="at least one session"):
        collate([])
    with pytest.raises(ValueError, match="session 1 has no 'y'"):
        collate([session_graph([1], target=2), session_graph([3])])
