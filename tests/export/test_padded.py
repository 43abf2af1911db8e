"""The session batch an exported graph builds from padded clicks equals the dataset's."""

import pytest
import torch

from graphrec.data import build_session_graphs, collate, session_graph
from graphrec.export import PaddedBatch, probe_sessions
from graphrec.export.onnx import pad
from graphrec.training import load_model


def _edges(x, edge_index, w_in, w_out):
    """Edges as (src item, dst item, session-local order-free) sorted rows."""
    key = edge_index[0] * (x.numel() + 1) + edge_index[1]
    order = key.argsort()
    return edge_index[:, order], w_in[order], w_out[order]


@pytest.mark.parametrize("weighting", ["binary", "count"])
def test_graph_equals_build_session_graphs(weighting):
    sessions = probe_sessions(30, count=70, longest=70, seed=3)
    sessions += [[5], [5, 5], [1, 2, 1, 2, 1, 2], [4, 3, 2, 1, 1, 1]]
    padded = PaddedBatch(pad(sessions, width=75), weighting=weighting)  # extra padding too
    lengths = torch.tensor([len(s) for s in sessions])
    g = build_session_graphs(torch.tensor([i for s in sessions for i in s]), lengths, weighting)
    batch = collate([session_graph(s, weighting=weighting) for s in sessions])
    assert torch.equal(padded.x, g.x)
    assert torch.equal(padded.alias, batch.alias)
    assert torch.equal(padded.batch, batch.batch)
    assert torch.equal(padded.click_ptr(), g.click_ptr)
    assert torch.equal(padded.click_session(), batch.click_session())
    assert torch.equal(padded.last_click(), batch.last_click())
    ours = _edges(padded.x, padded.edge_index, padded.edge_weight_in, padded.edge_weight_out)
    theirs = _edges(batch.x, batch.edge_index, batch.edge_weight_in, batch.edge_weight_out)
    assert torch.equal(ours[0], theirs[0])
    assert torch.allclose(ours[1], theirs[1]) and torch.allclose(ours[2], theirs[2])


def test_hand_checked_session():
    """[1, 2, 3, 2, 4] (the session_graph docstring): nodes 1 2 3 4, node 2 has two
    out-edges (2->3, 2->4), so each weighs 1/2 out; 2 has in-edges from 1 and 3."""
    b = PaddedBatch(torch.tensor([[1, 2, 3, 2, 4, 0]]))
    assert b.x.tolist() == [1, 2, 3, 4] and b.alias.tolist() == [0, 1, 2, 1, 3]
    weights = zip(b.edge_index.t(), b.edge_weight_in, b.edge_weight_out, strict=True)
    edges = {(int(s), int(d)): (float(i), float(o)) for (s, d), i, o in weights}
    assert edges == {(0, 1): (0.5, 1.0), (1, 2): (1.0, 0.5), (2, 1): (0.5, 1.0), (1, 3): (1.0, 0.5)}


@pytest.mark.parametrize("name", ["srgnn", "stamp", "attrec", "sdm", "din", "dien", "srgnn-repeat"])
def test_every_model_reads_it_as_its_own_batch(trained, name):
    """Each model's vectors (rankers: logits) on the padded batch equal those on the
    collated one, histories and users included, with padding beyond the longest."""
    model = load_model(trained[name]).eval()
    sessions = probe_sessions(model.num_items, count=40, longest=40, seed=1)
    g = torch.Generator().manual_seed(2)
    histories = [torch.randint(1, model.num_items + 1, (n % 7 * 3,), generator=g).tolist()
                 for n in range(40)]  # fmt: skip
    users = [n % (getattr(model, "num_users", 0) + 1) for n in range(40)]
    category = getattr(model, "item_category", None)
    reference = collate([
        session_graph(s, user=users[i] if getattr(model, "num_users", 0) else None,
                      category=category, history=histories[i] if model.reads_history else None)
        for i, s in enumerate(sessions)
    ])  # fmt: skip
    padded = PaddedBatch(
        pad(sessions, width=45),
        user=torch.tensor(users) if getattr(model, "num_users", 0) else None,
        history=pad(histories, width=25) if model.reads_history else None,
        item_category=category,
    )
    with torch.no_grad():
        if model.cheap_full_ranking:
            want, got = model.score(reference), model.score(padded)
        else:
            candidates = torch.randint(1, model.num_items + 1, (40, 30), generator=g)
            want, got = model.score(reference, candidates), model.score(padded, candidates)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
