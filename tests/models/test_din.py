import pytest
import torch

from graphrec import DIN
from graphrec.data import collate, session_graph
from graphrec.models import build_model

CATEGORY = torch.tensor([0] + [1 + i % 3 for i in range(20)])  # 20 items, 3 categories


def embed(model, items):
    e = model.item_embedding.weight[items]
    if model.num_categories:
        e = torch.cat([e, model.category_embedding.weight[CATEGORY[items]]], dim=-1)
    return e


def dense_din(model, behaviours, user, candidate):
    """DIN eq. (3) and the head, for one session and one candidate, from the paper."""
    e = embed(model, torch.tensor(behaviours))
    v = embed(model, torch.as_tensor(candidate))
    if model.pooling == "sum":
        interest = e.sum(0)
    else:
        a = []
        for e_j in e:
            h = torch.cat([e_j, v, e_j - v, e_j * v])
            for lin, act in zip(model.attention.lins, model.attention.acts, strict=True):
                h = act(lin(h).unsqueeze(0)).squeeze(0)
            a.append(model.attention.lin_out(h).squeeze())
        a = torch.stack(a)
        if model.attention_softmax:
            a = torch.softmax(a, 0)
        interest = (a.unsqueeze(1) * e).sum(0)
    features = [interest, v]
    if model.head_interaction:
        features.append(interest * v)
    if model.num_users:
        w = model.user_embedding.weight  # the unknown user 0: the mean known user
        features.append(w[user] if user else w[1:].mean(0))
    h = torch.cat(features).unsqueeze(0)
    for lin, act in zip(model.mlp.lins, model.mlp.acts, strict=True):
        h = act(lin(h))
    return model.mlp.lin_out(h).squeeze()


SESSIONS = [[3, 5, 3, 7], [2], [11, 12, 13, 14, 15, 16], [9, 4]]
HISTORIES = [[1, 2], [], [20], [6, 6, 8]]
USERS = [1, 0, 3, 2]


def make_batch(with_history=True):
    return collate(
        [
            session_graph(
                s, target=1, user=u, category=CATEGORY, history=h if with_history else None
            )
            for s, u, h in zip(SESSIONS, USERS, HISTORIES, strict=True)
        ]
    )


def warm(model):
    """Move Dice's running statistics away from (0, 1), then evaluate."""
    model.train()
    with torch.no_grad():
        model.score(make_batch(), torch.randint(1, 21, (4, 6)))
    return model.eval()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"pooling": "sum"},
        {
            "attention_softmax": True,
            "attention_hidden": (5, 4),
            "attention_activation": "sigmoid",
            "mlp_hidden": (6, 3),
            "mlp_activation": "prelu",
        },
        {"num_users": 0, "num_categories": 0},
        {"head_interaction": True},
        {"pooling": "sum", "head_interaction": True},
    ],
)
def test_din_matches_the_paper_equations(kwargs):
    torch.manual_seed(0)
    args = {"num_users": 3, "num_categories": 3, "hidden_channels": 4, "mlp_hidden": (7, 5)}
    args.update(kwargs)
    model = DIN(20, **args)
    if model.num_categories:
        model.set_item_category(CATEGORY)
    warm(model)
    candidates = torch.tensor([[1, 4, 7], [2, 3, 20], [5, 5, 6], [10, 11, 12]])
    out = model.score(make_batch(), candidates)
    for b in range(4):
        for c in range(3):
            ref = dense_din(model, HISTORIES[b] + SESSIONS[b], USERS[b], candidates[b, c])
            assert torch.allclose(out[b, c], ref, atol=1e-5), (b, c)


def test_full_score_equals_candidate_scores_and_pads_item_0():
    torch.manual_seed(0)
    model = warm(DIN(20, num_users=3, hidden_channels=4))
    model.score_budget = 50  # force many chunks
    batch = make_batch()
    full = model.score(batch)
    assert full.shape == (4, 21) and torch.isinf(full[:, 0]).all()
    every = torch.arange(1, 21).expand(4, -1)
    assert torch.allclose(full[:, 1:], model.score(batch, every), atol=1e-6)


def test_eval_scores_do_not_depend_on_the_batch():
    torch.manual_seed(0)
    model = warm(DIN(20, num_users=3, hidden_channels=4))
    batch = make_batch()
    cand = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    together = model.score(batch, cand)
    for b in range(4):
        alone = collate([session_graph(SESSIONS[b], user=USERS[b], history=HISTORIES[b])])
        assert torch.allclose(model.score(alone, cand[b : b + 1])[0], together[b], atol=1e-6)


def test_loss_trains_and_repr():
    torch.manual_seed(0)
    model = DIN(20, num_users=3, hidden_channels=4)
    loss = model.loss(make_batch())
    loss.backward()
    assert torch.isfinite(loss) and model.item_embedding.weight.grad is not None
    assert model.item_embedding.weight[0].abs().sum() == 0
    assert str(model) == (
        "DIN(20, num_users=3, num_categories=0, hidden_channels=4, pooling='attention')"
    )
    with pytest.raises(ValueError, match="pooling"):
        DIN(20, pooling="max")


def test_build_from_registry_keeps_categories_and_counts(tmp_path):
    from graphrec.datasets import synthetic

    data = synthetic(num_sessions=200, num_items=100, num_users=20, num_categories=5)
    model = build_model("din", dataset=data)
    assert model.num_categories == 5 and model.num_users == 20
    assert torch.equal(model.item_category, data.item_category)
    assert torch.equal(model.item_counts, data.item_counts().float())
