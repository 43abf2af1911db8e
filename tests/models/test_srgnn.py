import pytest
import torch
import torch.nn.functional as F

from graphrec import SRGNN
from graphrec.data import collate, dense_adjacency, session_graph

from ..nn.test_srgnn_conv import dense_step


def dense_srgnn_scores(model, sessions):
    """SR-GNN eq. (1)-(8), one session at a time with dense adjacency matrices."""
    rows = []
    for s in sessions:
        g = session_graph(s)
        a_in, a_out = dense_adjacency(g)
        h = model.item_embedding.weight[g.x]
        for _ in range(model.num_layers):
            h = dense_step(model.conv, h, a_in, a_out)
        v = h[g.alias]  # one row per click
        v_n = v[-1]
        alpha = (
            torch.sigmoid(model.lin_query(v_n) + model.lin_key(v)) @ model.lin_attention.weight.t()
        )
        s_g = (alpha * v).sum(0)
        s_h = model.lin_hybrid(torch.cat([s_g, v_n])) if model.hybrid else s_g
        rows.append(model.item_embedding.weight[1:] @ s_h)
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
