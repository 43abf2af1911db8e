import pytest
import torch
import torch.nn.functional as F

from graphrec import SDM
from graphrec.data import collate, session_graph

CATEGORY = torch.tensor([0] + [1 + i % 4 for i in range(30)])  # 30 items, 4 categories


def dense_sdm(model, sessions, users, histories):
    """SDM's equations, one session at a time (LSTM and multi-head attention on the
    unpadded sequence alone)."""
    rows = []
    for s, u, hist in zip(sessions, users, histories, strict=True):
        w = model.user_embedding.weight  # with users, the unknown user 0 is the mean one
        e_u = w[u] if u or not model.num_users else w[1:].mean(0)
        items = torch.tensor(s)
        x = model.item_embedding.weight[items]
        if model.num_categories:
            x = torch.cat([x, model.category_embedding.weight[CATEGORY[items]]], dim=1)
        h, _ = model.lstm(x.unsqueeze(0))
        h_hat, _ = model.self_attention(h, h, h)
        h_hat = h_hat[0]
        s_t = torch.softmax(h_hat @ e_u, 0) @ h_hat
        if len(hist) == 0:
            o = s_t
        else:
            hist = torch.tensor(hist)
            feats = [model.item_embedding.weight[hist]]
            if model.num_categories:
                feats.append(model.category_embedding.weight[CATEGORY[hist]])
            z = torch.cat([torch.softmax(g @ e_u, 0) @ g for g in feats])
            p_u = torch.tanh(model.lin_long(z))
            gate = torch.sigmoid(
                model.lin_gate_user(e_u) + model.lin_gate_short(s_t) + model.lin_gate_long(p_u)
            )
            o = (1 - gate) * p_u + gate * s_t
        rows.append(model.item_embedding.weight[1:] @ o)
    return torch.stack(rows)


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = SDM(30, num_users=5, num_categories=4, hidden_channels=8, num_heads=2).eval()
    m.set_item_category(CATEGORY)
    return m


def make_batch(sessions, users=None, histories=None):
    graphs = []
    for i, s in enumerate(sessions):
        graphs.append(
            session_graph(
                s,
                target=1,
                user=None if users is None else users[i],
                category=CATEGORY,
                history=None if histories is None else histories[i],
            )
        )
    return collate(graphs)


def test_scores_equal_dense_reference(model, sessions):
    users = [i % 6 for i in range(len(sessions))]
    histories = [[(3 * i + j) % 30 + 1 for j in range(i % 4)] for i in range(len(sessions))]
    assert any(len(h) == 0 for h in histories) and any(len(h) > 1 for h in histories)
    batch = make_batch(sessions, users, histories)
    expected = dense_sdm(model, sessions, users, histories)
    assert (model.score(batch)[:, 1:] - expected).abs().max() <= 1e-5


def test_unknown_user_and_no_history(model, sessions):
    """A batch without users or histories: user 0 and the short-term path alone."""
    bare = make_batch(sessions)
    expected = dense_sdm(model, sessions, [0] * len(sessions), [[]] * len(sessions))
    assert (model.score(bare)[:, 1:] - expected).abs().max() <= 1e-5
    empty = make_batch(sessions, [0] * len(sessions), [[]] * len(sessions))
    assert torch.allclose(model.score(empty), model.score(bare), atol=1e-6)


def test_empty_history_ignores_the_long_term_part(model, sessions):
    """With an empty history the gate never sees p_u: changing the long-term layers
    changes nothing for that session."""
    histories = [[] if i % 2 else [5, 6] for i in range(len(sessions))]
    batch = make_batch(sessions, [1] * len(sessions), histories)
    before = model.score(batch)
    with torch.no_grad():
        model.lin_long.weight.add_(1.0)
        model.lin_gate_long.weight.add_(1.0)
    after = model.score(batch)
    empty = torch.tensor([len(h) == 0 for h in histories])
    assert torch.allclose(before[empty], after[empty])
    assert not torch.allclose(before[~empty], after[~empty])


def test_without_categories(sessions):
    torch.manual_seed(1)
    model = SDM(30, num_users=0, hidden_channels=8, num_heads=1).eval()
    batch = make_batch(sessions, histories=[[2, 3]] * len(sessions))
    expected = dense_sdm(model, sessions, [0] * len(sessions), [[2, 3]] * len(sessions))
    assert (model.score(batch)[:, 1:] - expected).abs().max() <= 1e-5


def test_sampled_softmax_by_hand(sessions):
    torch.manual_seed(0)
    model = SDM(30, hidden_channels=8, softmax="sampled", num_sampled=7).eval()
    batch = make_batch(sessions)
    batch.y = torch.randint(1, 31, (len(sessions),))
    torch.manual_seed(9)
    loss = model.loss(batch)
    torch.manual_seed(9)
    sampled = torch.randint(1, 31, (7,))
    s = model.session_embedding(batch)
    w = model.item_embedding.weight
    logits = torch.cat([(s * w[batch.y]).sum(1, keepdim=True), s @ w[sampled].t()], dim=1)
    logits[:, 1:][sampled.unsqueeze(0) == batch.y.unsqueeze(1)] = float("-inf")
    assert torch.allclose(loss, F.cross_entropy(logits, torch.zeros_like(batch.y)), atol=1e-6)


def test_gradients_padding_repr_and_errors(model, sessions):
    model.train()
    batch = make_batch(sessions, [1] * len(sessions), [[4, 5, 6]] * len(sessions))
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model.loss(batch).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    assert model.item_embedding.weight[0].abs().sum() == 0
    assert model.category_embedding.weight[0].abs().sum() == 0
    assert str(model) == (
        "SDM(30, num_users=5, num_categories=4, hidden_channels=8, num_heads=2, softmax='full')"
    )
    with pytest.raises(ValueError, match="multiple of num_heads"):
        SDM(30, hidden_channels=9, num_heads=2)


def test_categories_come_from_the_model_alone(model, sessions):
    """One source of categories (issue 22 §4): the model's ``item_category`` table, in
    training, evaluation and ``recommend`` alike; a batch's own categories are not
    read, so a batch without them, or with other ones, scores the same."""
    histories = [[4, 5, 6]] * len(sessions)
    with_categories = make_batch(sessions, [1] * len(sessions), histories)
    plain = collate([session_graph(s, target=1, user=1, history=h)
                     for s, h in zip(sessions, histories, strict=True)])  # fmt: skip
    assert "category" not in plain
    wrong = make_batch(sessions, [1] * len(sessions), histories)
    wrong.category = torch.zeros_like(wrong.category)
    expected = dense_sdm(model, sessions, [1] * len(sessions), histories)
    for batch in (with_categories, plain, wrong):
        assert (model.score(batch)[:, 1:] - expected).abs().max() <= 1e-5
    recommended = model.recommend([sessions[0]], k=5, users=[1], histories=[histories[0]])
    assert recommended[0].tolist() == model.score(plain)[0, 1:].topk(5).indices.add(1).tolist()
