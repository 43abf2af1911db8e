import pytest
import torch
import torch.nn.functional as F

from graphrec import DIEN
from graphrec.data import collate, session_graph
from graphrec.models.ranking import behaviour_sequence
from tests.nn.test_augru import dense_augru

CATEGORY = torch.tensor([0] + [1 + i % 3 for i in range(20)])
SESSIONS = [[3, 5, 3, 7], [2], [11, 12, 13, 14, 15, 16], [9, 4]]
HISTORIES = [[1, 2], [], [20], [6, 6, 8]]
USERS = [1, 0, 3, 2]


def make_batch(sessions=SESSIONS, histories=HISTORIES):
    return collate(
        [
            session_graph(s, target=1, user=u, category=CATEGORY, history=h)
            for s, u, h in zip(sessions, USERS, histories, strict=True)
        ]
    )


def embed(model, items):
    e = model.item_embedding.weight[items]
    if model.num_categories:
        e = torch.cat([e, model.category_embedding.weight[CATEGORY[items]]], dim=-1)
    return e


def dense_dien(model, behaviours, user, candidate):
    """DIEN from the paper, one session and one candidate, no padding anywhere."""
    e = embed(model, torch.tensor(behaviours))
    h, _ = model.gru(e.unsqueeze(0))  # the interest extractor on the bare sequence
    h = h[0]
    v = embed(model, torch.as_tensor(candidate))
    a = torch.softmax(h @ model.attention_weight @ v, 0)  # eq. (5)
    state = dense_augru(model.augru, h, a, len(behaviours))  # eq. (7)-(8)
    features = [state, v]
    if model.head_interaction:
        features += [e.sum(0), e.sum(0) * v]
    if model.num_users:
        w = model.user_embedding.weight  # the unknown user 0: the mean known user
        features.append(w[user] if user else w[1:].mean(0))
    x = torch.cat(features).unsqueeze(0)
    for lin, act in zip(model.mlp.lins, model.mlp.acts, strict=True):
        x = act(lin(x))
    return model.mlp.lin_out(x).squeeze()


def naive_aux(model, batch, negatives):
    """Eq. (6) by a loop over sessions and real positions, with given negatives."""
    items, mask = behaviour_sequence(batch)
    terms = []
    n = 0
    for b in range(items.size(0)):
        seq = items[b, mask[b]]
        h, _ = model.gru(embed(model, seq).unsqueeze(0))
        for t in range(seq.numel() - 1):
            pos = h[0, t] @ embed(model, seq[t + 1])
            neg = h[0, t] @ embed(model, negatives[n])
            terms.append(-F.logsigmoid(pos) - F.logsigmoid(-neg))
            n += 1
    return torch.stack(terms).mean()


@pytest.fixture(params=[False, True], ids=["paper", "head_interaction"])
def model(request):
    torch.manual_seed(0)
    m = DIEN(20, num_users=3, num_categories=3, hidden_channels=3, mlp_hidden=(5, 4),
             head_interaction=request.param)  # fmt: skip
    m.set_item_category(CATEGORY)
    m.train()
    with torch.no_grad():  # move Dice's running statistics
        m.score(make_batch(), torch.randint(1, 21, (4, 5)))
    return m.eval()


def test_dien_matches_the_paper_equations(model):
    candidates = torch.tensor([[1, 4, 7], [2, 3, 20], [5, 5, 6], [10, 11, 12]])
    out = model.score(make_batch(), candidates)
    for b in range(4):
        for c in range(3):
            ref = dense_dien(model, HISTORIES[b] + SESSIONS[b], USERS[b], candidates[b, c])
            assert torch.allclose(out[b, c], ref, atol=1e-5), (b, c)


def test_full_score_equals_candidate_scores(model):
    model.score_budget = 40
    batch = make_batch()
    full = model.score(batch)
    assert torch.isinf(full[:, 0]).all()
    assert torch.allclose(
        full[:, 1:], model.score(batch, torch.arange(1, 21).expand(4, -1)), atol=1e-6
    )


def test_aux_loss_equals_a_naive_loop_over_real_positions(model):
    batch = make_batch()
    state = model.encode(batch)
    torch.manual_seed(5)
    loss = model.auxiliary_loss(state, batch)
    # the same negatives, drawn the same way
    torch.manual_seed(5)
    items, mask = state["items"], state["mask"]
    next_item = items[:, 1:][mask[:, 1:]]
    draw = torch.randint(1, model.num_items, next_item.shape)
    negatives = draw + (draw >= next_item).long()
    assert (negatives != next_item).all()
    assert torch.allclose(loss, naive_aux(model, batch, negatives), atol=1e-6)
    # 3 + 0 + 6 + 4 real transitions: padding and last positions never count
    assert next_item.numel() == 5 + 0 + 6 + 4


def test_padding_changes_nothing(model):
    """More padding (one session's behaviours grow) leaves the others' logits unchanged."""
    batch = make_batch()
    cand = torch.tensor([[1, 2], [3, 4], [5, 6], [7, 8]])
    out = model.score(batch, cand)
    longer = make_batch(SESSIONS, [*HISTORIES[:3], HISTORIES[3] + list(range(1, 16))])
    out_longer = model.score(longer, cand)
    assert torch.allclose(out[:3], out_longer[:3], atol=1e-6)
    # changing padded values of the padded behaviour tensor changes nothing either
    state = model.encode(batch)
    mask = state["mask"]
    e_garbage = state["behaviours"].clone()
    e_garbage[~mask] = 5.0
    h_garbage, _ = model.gru(e_garbage)
    assert torch.allclose(h_garbage[mask], state["states"][mask], atol=1e-6)
    garbage_state = {**state, "behaviours": e_garbage, "states": h_garbage}
    assert torch.allclose(model.logits(garbage_state, cand), out, atol=1e-6)
    torch.manual_seed(3)
    a = model.auxiliary_loss(state, batch)
    torch.manual_seed(3)
    b = model.auxiliary_loss(garbage_state, batch)
    assert torch.allclose(a, b)
    # three more padded columns (any values) leave the aux loss unchanged
    pad = {
        "items": torch.cat([state["items"], torch.randint(1, 21, (4, 3))], 1),
        "behaviours": torch.cat([state["behaviours"], torch.randn(4, 3, 6)], 1),
        "states": torch.cat([state["states"], torch.randn(4, 3, 6)], 1),
        "mask": torch.cat([state["mask"], torch.zeros(4, 3, dtype=torch.bool)], 1),
    }
    torch.manual_seed(3)
    c = model.auxiliary_loss({**state, **pad}, batch)
    assert torch.allclose(a, c)


def test_loss_is_bce_plus_weighted_aux(model):
    model.train()
    batch = make_batch()
    torch.manual_seed(0)
    total = model.loss(batch)
    model.aux_weight = 0.0
    torch.manual_seed(0)
    bce = model.loss(batch)
    assert float(total.detach()) > float(bce.detach()) > 0
    total.backward()
    assert model.gru.weight_ih_l0.grad is not None


def test_mlp_auxiliary_and_repr():
    torch.manual_seed(0)
    m = DIEN(20, hidden_channels=4, auxiliary="mlp")
    batch = make_batch()
    assert torch.isfinite(m.loss(batch))
    assert str(m) == (
        "DIEN(20, num_users=0, num_categories=0, hidden_channels=4, aux_weight=1.0, "
        "auxiliary='mlp')"
    )
    with pytest.raises(ValueError, match="auxiliary"):
        DIEN(20, auxiliary="dot")
