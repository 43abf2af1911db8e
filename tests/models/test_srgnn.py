import pytest
import torch
import torch.nn.functional as F

from graphrec import SRGNN
from graphrec.data import collate, dense_adjacency, session_graph

from ..nn.test_srgnn_conv import dense_step


def dense_srgnn_scores(model, sessions):
    """SR-GNN eq. (1)-(8), one session at a time with dense adjacency matrices;
    with NISER's unit vectors and NISER+'s position embeddings where the model has them."""
    rows = []
    table = model.item_embedding.weight
    if model.normalize:
        table = F.normalize(table, dim=-1)
    for s in sessions:
        g = session_graph(s)
        a_in, a_out = dense_adjacency(g)
        h = table[g.x]
        for _ in range(model.num_layers):
            h = dense_step(model.conv, h, a_in, a_out)
        v = h[g.alias]  # one row per click
        if model.position:  # the click t of n (from 0) was n - 1 - t clicks ago
            for t in range(len(s)):
                ago = min(len(s) - 1 - t, model.max_position - 1)
                v[t] = v[t] + model.position_embedding.weight[ago]
        v_n = v[-1]
        alpha = (
            torch.sigmoid(model.lin_query(v_n) + model.lin_key(v)) @ model.lin_attention.weight.t()
        )
        s_g = (alpha * v).sum(0)
        s_h = model.lin_hybrid(torch.cat([s_g, v_n])) if model.hybrid else s_g
        if model.normalize:
            s_h = model.scale * F.normalize(s_h, dim=0)
        rows.append(table[1:] @ s_h)
    return torch.stack(rows)


def random_sessions(gen, num_items, count):
    return [
        torch.randint(
            1, num_items + 1, (int(torch.randint(1, 9, (1,), generator=gen)),), generator=gen
        ).tolist()
        for _ in range(count)
    ]


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("hybrid", [True, False])
def test_scores_equal_dense_reference(num_layers, hybrid):
    gen = torch.Generator().manual_seed(num_layers)
    torch.manual_seed(num_layers)
    model = SRGNN(30, hidden_channels=12, num_layers=num_layers, hybrid=hybrid).eval()
    sessions = random_sessions(gen, 30, 16)
    batch = collate([session_graph(s, target=1) for s in sessions])
    scores = model.score(batch)
    assert scores.shape == (16, 31)
    assert torch.isneginf(scores[:, 0]).all()
    expected = dense_srgnn_scores(model, sessions)
    assert (scores[:, 1:] - expected).abs().max() <= 1e-5


def test_repr():
    assert str(SRGNN(43097)) == "SRGNN(43097, hidden_channels=100, num_layers=1, hybrid=True)"
    assert "num_layers=2" in str(SRGNN(10, hidden_channels=8, num_layers=2))


def test_init_and_padding_row():
    model = SRGNN(50, hidden_channels=16)
    assert torch.equal(model.item_embedding.weight[0], torch.zeros(16))
    bound = 1 / 16**0.5
    assert all(p.abs().max() <= bound + 1e-6 for p in model.parameters())
    model.item_embedding.weight.data.normal_()
    model.reset_parameters()
    assert torch.equal(model.item_embedding.weight[0], torch.zeros(16))


def test_gradients_reach_every_parameter_and_padding_stays_zero():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = SRGNN(20, hidden_channels=8, num_layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=1e-5)
    sessions = random_sessions(gen, 20, 10)
    batch = collate([session_graph(s, target=(i % 20) + 1) for i, s in enumerate(sessions)])
    loss = model.loss(batch)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.equal(model.item_embedding.weight.grad[0], torch.zeros(8))
    opt.step()
    assert torch.equal(model.item_embedding.weight[0], torch.zeros(8))


def test_fused_loss_equals_cross_entropy_with_gradients():
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    model = SRGNN(25, hidden_channels=8)
    batch = collate(
        [session_graph(s, target=(i % 25) + 1) for i, s in enumerate(random_sessions(gen, 25, 12))]
    )
    fused = model.loss(batch)
    fused.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    plain = F.cross_entropy(model.score(batch)[:, 1:], batch.y - 1)
    plain.backward()
    assert torch.allclose(fused, plain, atol=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(grads[n], p.grad, atol=1e-6), n


@pytest.mark.parametrize("normalize", [False, True])
def test_niser_plus_positions_equal_dense_reference(normalize):
    """NISER+: each click's state gets the vector of how many clicks ago it was
    (clicks further back than max_position share the last one), query included."""
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    model = SRGNN(30, hidden_channels=12, normalize=normalize, position=True, max_position=4)
    model.eval()
    sessions = random_sessions(gen, 30, 16)
    assert max(map(len, sessions)) > 4  # some clicks share the last position vector
    batch = collate([session_graph(s, target=1) for s in sessions])
    expected = dense_srgnn_scores(model, sessions)
    assert (model.score(batch)[:, 1:] - expected).abs().max() <= 1e-4


def test_niser_plus_zero_positions_and_eval_dropout_give_the_plain_model():
    gen = torch.Generator().manual_seed(6)
    torch.manual_seed(6)
    plain = SRGNN(30, hidden_channels=12, normalize=True).eval()
    plus = SRGNN(30, hidden_channels=12, normalize=True, position=True, dropout=0.1).eval()
    state = plain.state_dict()
    state["position_embedding.weight"] = torch.zeros(50, 12)
    plus.load_state_dict(state)
    batch = collate([session_graph(s, target=1) for s in random_sessions(gen, 30, 10)])
    assert torch.equal(plain.score(batch), plus.score(batch))
    # the positions matter: with vectors of their own the scores change
    plus.position_embedding.weight.data.normal_()
    assert not torch.allclose(plain.score(batch), plus.score(batch))


def test_niser_plus_dropout_drops_input_embeddings_in_training_only():
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    model = SRGNN(30, hidden_channels=12, dropout=0.5)
    batch = collate([session_graph(s, target=1) for s in random_sessions(gen, 30, 10)])
    torch.manual_seed(11)
    dropped = model.node_states(batch)
    torch.manual_seed(11)
    h = F.dropout(model.item_embedding.weight[batch.x], 0.5, training=True)
    expected = model.conv(h, batch.edge_index, batch.edge_weight_in, batch.edge_weight_out)
    assert torch.allclose(dropped, expected, atol=1e-6)
    model.eval()
    h = model.item_embedding.weight[batch.x]
    expected = model.conv(h, batch.edge_index, batch.edge_weight_in, batch.edge_weight_out)
    assert torch.equal(model.node_states(batch), expected)


def test_niser_plus_options_are_checked_and_shown():
    with pytest.raises(ValueError, match="max_position must be >= 1"):
        SRGNN(10, position=True, max_position=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        SRGNN(10, dropout=1.0)
    shown = str(SRGNN(10, hidden_channels=8, normalize=True, position=True, dropout=0.1))
    assert shown == (
        "SRGNN(10, hidden_channels=8, num_layers=1, hybrid=True, normalize=True, scale=12, "
        "position=True, max_position=50, dropout=0.1)"
    )
