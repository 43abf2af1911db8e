import math

import pytest
import torch

from graphrec import AttRec
from graphrec.data import collate, session_graph
from graphrec.evaluation import FaissRetriever
from graphrec.models.attrec import sample_negatives
from graphrec.nn.functional import timing_signal


def clip(x, bound):
    norms = x.norm(dim=-1, keepdim=True)
    return torch.where(norms > bound, x * bound / norms, x)


def dense_attrec_distance(model, sessions, users):
    """AttRec eq. (1)-(7), one session at a time: y_i for every item (smaller is better)."""
    d, L, bound = model.hidden_channels, model.window, model.max_norm
    rows = []
    for s, u in zip(sessions, users, strict=True):
        window = s[-L:]
        n = len(window)
        x = clip(model.item_embedding.weight[torch.tensor(window)], bound)
        pos = torch.arange(L - n, L)  # the last click always at position L - 1
        inputs = x + timing_signal(pos, d)
        w = model.attention.lin_query.weight
        q, k = torch.relu(inputs @ w.t()), torch.relu(inputs @ w.t())  # W_Q = W_K
        s_att = torch.softmax(q @ k.t() / math.sqrt(d), dim=1) * (1 - torch.eye(n))
        m = (s_att @ x).mean(0)
        short = (m - clip(model.item_embedding.weight[1:], bound)).square().sum(1)
        if model.weight_long == 0:
            rows.append(short)
            continue
        w = model.user_embedding.weight  # the unknown user 0: the mean known user
        user = clip(w[u] if u else w[1:].mean(0), bound)
        long = (user - clip(model.item_long.weight[1:], bound)).square().sum(1)
        rows.append(model.omega * long + (1 - model.omega) * short)
    return torch.stack(rows)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return AttRec(30, num_users=4, hidden_channels=8, window=3, max_norm=1.0).eval()


def test_score_is_minus_the_distance(model, sessions):
    users = [i % 5 for i in range(len(sessions))]  # user 0 = unknown
    batch = collate(
        [session_graph(s, target=1, user=u) for s, u in zip(sessions, users, strict=True)]
    )
    scores = model.score(batch)
    assert torch.isneginf(scores[:, 0]).all()
    expected = -dense_attrec_distance(model, sessions, users)
    assert (scores[:, 1:] - expected).abs().max() <= 1e-5
    cand = torch.randint(1, 31, (len(sessions), 4))
    assert torch.allclose(model.score(batch, cand), scores.gather(1, cand), atol=1e-5)


def test_short_term_only_without_users(sessions, batch):
    torch.manual_seed(0)
    model = AttRec(30, hidden_channels=8, window=4).eval()
    assert model.weight_long == 0 and model.user_embedding is None
    assert "omega=0" in str(model)
    expected = -dense_attrec_distance(model, sessions, [0] * len(sessions))
    assert (model.score(batch)[:, 1:] - expected).abs().max() <= 1e-5


def test_dot_metric(model, batch):
    dot = AttRec(30, num_users=4, hidden_channels=8, window=3, metric="dot").eval()
    dot.load_state_dict(model.state_dict())
    u = clip(dot.user_embedding.weight[1:].mean(0), 1.0)  # the unknown user 0
    m = dot.short_term(batch)
    v = clip(dot.item_long.weight, 1.0)
    x = clip(dot.item_embedding.weight, 1.0)
    expected = 0.2 * (v @ u) + 0.8 * (m @ x.t())
    assert torch.allclose(dot.score(batch)[:, 1:], expected[:, 1:], atol=1e-5)


@pytest.mark.parametrize("metric", ["l2", "dot"])
def test_faiss_top_k_equals_torch(metric):
    torch.manual_seed(3)
    model = AttRec(200, num_users=10, hidden_channels=8, metric=metric).eval()
    sessions = [[1 + (7 * i + j) % 200 for j in range(1 + i % 6)] for i in range(40)]
    batch = collate([session_graph(s, user=i % 11) for i, s in enumerate(sessions)])
    with torch.no_grad():
        exact = model.score(batch).topk(10, dim=1).indices
        retriever = FaissRetriever(model.item_vectors(), kind="flat", metric=metric)
        top, scores = retriever.search(model.session_embedding(batch), 10)
        assert torch.equal(top, exact)
        assert torch.allclose(scores, model.score(batch).gather(1, top).float(), atol=1e-4)
        hnsw = FaissRetriever(model.item_vectors(), kind="hnsw", metric=metric, ef_search=400)
        assert hnsw.recall_vs_exact(model.session_embedding(batch), model.item_vectors(), 10) > 0.95


def test_hinge_loss_by_hand(model, batch):
    torch.manual_seed(5)
    loss = model.loss(batch)  # eval mode: no key dropout, the RNG only draws negatives
    torch.manual_seed(5)
    neg = sample_negatives(batch.y, 30, model.num_negatives)
    pos_score = model.score(batch, batch.y.view(-1, 1))
    neg_score = model.score(batch, neg)
    # y+ - y- + margin with y = -score
    expected = torch.relu(-pos_score + neg_score + model.margin).mean()
    assert torch.allclose(loss, expected, atol=1e-6)


def test_sample_negatives_uniform_and_never_the_target():
    torch.manual_seed(0)
    target = torch.full((20000,), 3)
    neg = sample_negatives(target, 5, 1).view(-1)
    assert not (neg == 3).any()
    counts = torch.bincount(neg, minlength=6)[[1, 2, 4, 5]].float()
    assert (counts / counts.sum() - 0.25).abs().max() < 0.02


def test_gradients_padding_and_repr(batch):
    torch.manual_seed(0)
    model = AttRec(30, num_users=4, hidden_channels=8)
    batch.user = torch.arange(batch.num_sessions) % 5
    opt = torch.optim.Adagrad(model.parameters(), lr=0.5)
    model.loss(batch).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert all(p.grad.abs().sum() > 0 for p in model.parameters())
    opt.step()
    assert model.item_embedding.weight[0].abs().sum() == 0
    assert str(model) == (
        "AttRec(30, num_users=4, hidden_channels=8, window=5, omega=0.2, metric='l2')"
    )
    with pytest.raises(ValueError, match=r"user ids must lie in 0\.\.4"):
        batch.user[0] = 9
        model.score(batch)


def test_repeat_term_in_metric_learning_form():
    """repeat=True: the session's items get softplus(beta) P_r(s) p_r(i|s) on top of
    the distance score (others nothing), the same on the full and the candidate
    paths; the hinge loss also takes the session's items as negatives."""
    from graphrec.data import collate, session_graph

    torch.manual_seed(0)
    model = AttRec(20, hidden_channels=6, repeat=True).eval()
    plain = AttRec(20, hidden_channels=6).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith(("repeat", "repeat_explore"))})  # fmt: skip
    batch = collate([session_graph([3, 5, 3], target=3), session_graph([7], target=8)])
    bonus = model.score(batch) - plain.score(batch)
    bonus[:, 0] = 0
    layer = model.repeat_explore
    q = model.session_embedding(batch)
    clicks = batch.x[batch.alias]
    att = layer.repeat_log_attention(q, model.item_rows(clicks), batch.click_session(),
                                     batch.click_ptr()).exp()  # fmt: skip
    p_repeat = layer.gates(q)[0].exp()
    beta = torch.nn.functional.softplus(model.repeat_bonus)
    expected = torch.zeros(2, 21)
    expected[0, 3] = beta * p_repeat[0] * (att[0] + att[2])
    expected[0, 5] = beta * p_repeat[0] * att[1]
    expected[1, 7] = beta * p_repeat[1] * att[3]
    assert torch.allclose(bonus, expected, atol=1e-6)
    cand = torch.tensor([[3, 4, 5], [7, 8, 1]])
    assert torch.allclose(model.score(batch, cand), model.score(batch).gather(1, cand), atol=1e-6)
    model.train()
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.repeat_bonus.grad is not None
    assert "repeat=True" in repr(model)
