import numpy as np
import pytest
import torch

from graphrec.data import build_session_graphs, dense_adjacency, session_graph

H = 0.5
T3, O3 = 2 / 3, 1 / 3


def dense(items, weighting="binary"):
    g = session_graph(items, weighting=weighting)
    a_in, a_out = dense_adjacency(g)
    return g, a_in, a_out


def test_paper_session():
    g, a_in, a_out = dense([1, 2, 3, 2, 4])
    assert g.x.tolist() == [1, 2, 3, 4]
    assert g.alias.tolist() == [0, 1, 2, 1, 3]
    # rows/columns: items 1, 2, 3, 4
    expected_out = torch.tensor(
        [[0, 1, 0, 0],
         [0, 0, H, H],
         [0, 1, 0, 0],
         [0, 0, 0, 0]], dtype=torch.float)  # fmt: skip
    expected_in = torch.tensor(
        [[0, 0, 0, 0],
         [H, 0, H, 0],
         [0, 1, 0, 0],
         [0, 1, 0, 0]], dtype=torch.float)  # fmt: skip
    assert torch.equal(a_out, expected_out)
    assert torch.equal(a_in, expected_in)
    # the row of item 2 quoted in the issue
    assert a_out[1].tolist() == [0, 0, 0.5, 0.5]
    assert a_in[1].tolist() == [0.5, 0, 0.5, 0]


def test_repeated_transition_binary():
    g, a_in, a_out = dense([1, 2, 1, 3, 1, 2], "binary")
    assert g.x.tolist() == [1, 2, 3]
    assert g.edge_index.size(1) == 4  # 1->2 counted once
    assert torch.allclose(a_out, torch.tensor([[0, H, H], [1, 0, 0], [1, 0, 0]]))
    assert torch.allclose(a_in, torch.tensor([[0, H, H], [1, 0, 0], [1, 0, 0]]))


def test_repeated_transition_count():
    _, a_in, a_out = dense([1, 2, 1, 3, 1, 2], "count")
    assert torch.allclose(a_out, torch.tensor([[0, T3, O3], [1, 0, 0], [1, 0, 0]]))
    assert torch.allclose(a_in, torch.tensor([[0, H, H], [1, 0, 0], [1, 0, 0]]))


def test_self_loop():
    g, a_in, a_out = dense([5, 5, 6])
    assert g.x.tolist() == [5, 6]
    assert g.alias.tolist() == [0, 0, 1]
    assert sorted(map(tuple, g.edge_index.t().tolist())) == [(0, 0), (0, 1)]
    assert torch.equal(a_out, torch.tensor([[H, H], [0, 0]]))
    assert torch.equal(a_in, torch.tensor([[1.0, 0], [1, 0]]))


def test_single_click():
    g, a_in, a_out = dense([7])
    assert g.x.tolist() == [7]
    assert g.alias.tolist() == [0]
    assert g.edge_index.shape == (2, 0)
    assert torch.equal(a_in, torch.zeros(1, 1))
    assert torch.equal(a_out, torch.zeros(1, 1))


def test_target_user_category():
    cat = torch.tensor([0, 10, 20, 30])
    g = session_graph([3, 1, 3], target=2, user=9, category=cat)
    assert g.y.tolist() == [2]
    assert g.user.tolist() == [9]
    assert g.category.tolist() == [30, 10]


def test_accepts_numpy_and_tensor():
    a = session_graph(np.array([4, 2, 4]))
    b = session_graph(torch.tensor([4, 2, 4]))
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index)


@pytest.mark.parametrize(
    "items, kwargs, match",
    [
        ([], {}, "empty session"),
        ([1, 0, 2], {}, "position 1 is 0"),
        ([1, -3], {}, "position 1 is -3"),
        ([1, 2.5], {}, "position 1 is 2.5, not an integer"),
        ([1, "2"], {}, "not an integer"),
        ([True, 2], {}, "not an integer"),
        (torch.tensor([1.0, 2.0]), {}, "integer tensor"),
        ([1, 2, 3], {"max_length": 2}, "exceed max_length=2"),
        ([1, 2], {"weighting": "log"}, "weighting must be one of"),
        ([1, 2], {"target": 0}, "target must be an item id"),
        ([1, 2], {"max_length": 0}, "max_length must be >= 1"),
    ],
)
def test_bad_input(items, kwargs, match):
    with pytest.raises(ValueError, match=match):
        session_graph(items, **kwargs)


def test_truncate_keeps_most_recent():
    g = session_graph([1, 2, 3, 4], max_length=2, truncate=True)
    assert g.x.tolist() == [3, 4]


def test_vectorised_equals_one_by_one():
    gen = torch.Generator().manual_seed(0)
    sessions = [torch.randint(1, 6, (int(n),), generator=gen) for n in [1, 2, 5, 9, 3, 12]]
    for weighting in ("binary", "count"):
        flat = build_session_graphs(
            torch.cat(sessions), torch.tensor([len(s) for s in sessions]), weighting
        )
        for i, s in enumerate(sessions):
            one = session_graph(s, weighting=weighting)
            ns, ne = flat.node_ptr[i], flat.node_ptr[i + 1]
            es, ee = flat.edge_ptr[i], flat.edge_ptr[i + 1]
            assert torch.equal(flat.x[ns:ne], one.x)
            assert torch.equal(flat.alias[flat.click_ptr[i] : flat.click_ptr[i + 1]], one.alias)
            assert torch.equal(flat.edge_index[:, es:ee], one.edge_index)
            assert torch.equal(flat.edge_weight_in[es:ee], one.edge_weight_in)
            assert torch.equal(flat.edge_weight_out[es:ee], one.edge_weight_out)


def test_adjacency_rows_are_normalised():
    g = session_graph([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5], weighting="count")
    a_in, a_out = dense_adjacency(g)
    for a in (a_in, a_out):
        sums = a.sum(1)
        assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))
