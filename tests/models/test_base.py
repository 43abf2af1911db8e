import pytest
import torch

from graphrec import SRGNN
from graphrec.data import collate, session_graph


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = SRGNN(5, hidden_channels=8)
    m.set_item_ids(torch.tensor([0, 11, 22, 33, 44, 55]))
    return m


def test_recommend_returns_original_ids(model):
    top = model.recommend([[22, 33], [55]], k=5)
    assert top.shape == (2, 5)
    assert sorted(top[0].tolist()) == [11, 22, 33, 44, 55]
    scores = model.score(collate([session_graph([2, 3]), session_graph([5])]))
    expected = model.item_ids[scores.topk(5, dim=1).indices]
    assert torch.equal(top, expected)


def test_recommend_exclude_seen(model):
    top, scores = model.recommend([[22, 33, 22]], k=3, exclude_seen=True, return_scores=True)
    assert set(top[0].tolist()) == {11, 44, 55}
    assert (scores[0, :-1] >= scores[0, 1:]).all()


def test_recommend_never_returns_padding_or_seen_items(model):
    with pytest.warns(UserWarning, match="k=5 capped at 3"):
        top, scores = model.recommend([[22, 33], [55]], k=5, exclude_seen=True, return_scores=True)
    assert top.shape == (2, 3) and torch.isfinite(scores).all()
    assert not {0, 22, 33} & set(top[0].tolist()) and 55 not in top[1].tolist()
    with pytest.raises(ValueError, match="no item is left"):
        model.recommend([[11, 22, 33, 44, 55]], k=1, exclude_seen=True)


def test_recommend_errors(model):
    with pytest.raises(ValueError, match=r"session 1: unknown item id\(s\) \[99\]"):
        model.recommend([[22], [99]], k=3)
    with pytest.raises(ValueError, match=r"k must lie in 1\.\.5"):
        model.recommend([[22]], k=6)
    with pytest.raises(ValueError, match="session 0 is empty"):
        model.recommend([[]], k=3)
    with pytest.raises(ValueError, match="item_ids must have 6 entries"):
        model.set_item_ids(torch.arange(5))


def test_candidate_scores_match_full_scores(model):
    batch = collate([session_graph([1, 2]), session_graph([4, 4, 3])])
    full = model.score(batch)
    cand = torch.tensor([[5, 1, 2], [3, 3, 4]])
    assert torch.allclose(model.score(batch, cand), full.gather(1, cand), atol=1e-6)


def test_item_ids_must_increase(model):
    with pytest.raises(ValueError, match="strictly increasing"):
        model.set_item_ids(torch.tensor([0, 11, 44, 33, 55, 66]))


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("name", ["srgnn", "stamp", "sdm"])
def test_fused_loss_gradients_equal_the_unfused_ones(name, blocked, monkeypatch):
    # inside loss() the item lookup adds its rows into the full softmax's dense table
    # gradient (GradientSink); every parameter's gradient must equal the plain
    # cross-entropy's, with the items in one piece and in blocks
    import graphrec.nn.functional as fn
    from graphrec.models import build_model

    if blocked:  # blocks of 2 items: 10 rows = 5 blocks
        monkeypatch.setattr(fn, "MM_BLOCK", 2)
    torch.manual_seed(0)
    model = build_model(name, num_items=9, hidden_channels=8)
    sessions = [[1, 2, 1, 3], [4, 4, 5], [9, 2]]
    batch = collate([session_graph(s[:-1], target=s[-1]) for s in sessions])
    model.loss(batch).backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert not model.item_embedding.weight.grad.is_sparse  # Adam needs a dense gradient
    model.zero_grad()
    scores = model.score(batch)
    torch.nn.functional.cross_entropy(scores[:, 1:], batch.y - 1).backward()
    plain = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert fused.keys() == plain.keys()
    for n in plain:
        assert torch.allclose(fused[n], plain[n], atol=1e-6), n
    assert fused["item_embedding.weight"][0].abs().sum() == 0  # padding row untouched
    # outside loss() the lookup's gradient is the usual dense one
    model.zero_grad()
    model.session_embedding(batch).sum().backward()
    assert not model.item_embedding.weight.grad.is_sparse
