import pytest
import torch

from graphrec import DIN, SRGNN
from graphrec.data import collate, session_graph
from graphrec.models.ranking import behaviour_sequence


def test_behaviour_sequence_puts_history_before_clicks():
    batch = collate(
        [
            session_graph([3, 5, 3], history=[1, 2]),
            session_graph([4], history=[]),
            session_graph([6, 7], history=[8]),
        ]
    )
    items, mask = behaviour_sequence(batch)
    assert items.tolist() == [[1, 2, 3, 5, 3], [4, 0, 0, 0, 0], [8, 6, 7, 0, 0]]
    assert mask.sum(1).tolist() == [5, 1, 3]
    plain = collate([session_graph([3, 5]), session_graph([4])])
    items, mask = behaviour_sequence(plain)
    assert items.tolist() == [[3, 5], [4, 0]]


def make_batch():
    sessions = [[1, 2, 3], [4], [5, 6, 7, 8]]
    return collate([session_graph(s, target=t) for s, t in zip(sessions, [9, 1, 10], strict=True)])


@pytest.mark.parametrize("sampling", ["uniform", "popularity"])
def test_negatives_avoid_clicks_and_target(sampling):
    torch.manual_seed(0)
    model = DIN(12, hidden_channels=4, num_negatives=50, negative_sampling=sampling)
    batch = make_batch()
    neg = model.sample_negatives(batch)
    assert neg.shape == (3, 50)
    forbidden = [{1, 2, 3, 9}, {4, 1}, {5, 6, 7, 8, 10}]
    for row, bad in zip(neg.tolist(), forbidden, strict=True):
        assert not set(row) & bad and min(row) >= 1 and max(row) <= 12
    # every allowed item is drawn (uniform over the rest)
    assert set(neg[0].tolist()) == set(range(1, 13)) - forbidden[0]


def test_popularity_negatives_follow_counts():
    torch.manual_seed(0)
    model = DIN(12, hidden_channels=4, num_negatives=2000, negative_sampling="popularity")
    counts = torch.zeros(13)
    counts[11], counts[12] = 1.0, 3.0
    model.set_item_counts(counts)
    neg = model.sample_negatives(make_batch())
    share = (neg[0] == 12).float().mean()
    assert set(neg.unique().tolist()) == {11, 12}
    assert abs(float(share) - 0.75) < 0.05


def test_hard_negatives_come_from_the_retrievers_top_k():
    torch.manual_seed(0)
    retriever = SRGNN(12, hidden_channels=4).eval()
    model = DIN(12, hidden_channels=4, num_negatives=3, negative_sampling="hard", hard_k=4)
    batch = make_batch()
    with pytest.raises(ValueError, match="set_retriever"):
        model.sample_negatives(batch)
    model.set_retriever(retriever)
    assert "retriever" not in dict(model.named_modules())  # never trained nor saved
    neg = model.sample_negatives(batch)
    scores = retriever.score(batch)
    forbidden = [[1, 2, 3, 9], [4, 1], [5, 6, 7, 8, 10]]
    for b, bad in enumerate(forbidden):
        scores[b, bad] = float("-inf")
    top = scores.topk(4, dim=1).indices
    for b in range(3):
        assert set(neg[b].tolist()) <= set(top[b].tolist())
        assert len(set(neg[b].tolist())) == 3  # without replacement


def test_full_catalogue_clicked_is_an_error():
    model = DIN(3, hidden_channels=4)
    batch = collate([session_graph([1, 2], target=3)])
    with pytest.raises(ValueError, match="could not draw negatives"):
        model.sample_negatives(batch)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_and_candidate_scores_share_one_dtype(dtype):
    """A ranker's full-catalogue scores come in the dtype of its candidate scores
    (they were float32 whatever the model's), and agree with them."""
    from graphrec import DIEN

    for model in (DIN(12, hidden_channels=4), DIEN(12, hidden_channels=4)):
        model = model.to(dtype).eval()
        batch = make_batch()
        candidates = torch.tensor([[9, 1, 4], [2, 3, 11], [10, 5, 12]])
        with torch.no_grad():
            full, some = model.score(batch), model.score(batch, candidates)
        assert full.dtype == some.dtype == dtype
        tol = 1e-6 if dtype == torch.float32 else 1e-12  # other matmul blockings
        assert torch.allclose(full.gather(1, candidates), some, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["din", "dien"])
def test_session_features_reach_the_head(name):
    from graphrec.models import build_model

    torch.manual_seed(0)
    model = build_model(name, num_items=12, hidden_channels=4, session_features=True).eval()
    plain = build_model(name, num_items=12, hidden_channels=4).eval()
    assert model.session_channels == 8 and plain.session_channels == 0
    assert repr(model).endswith("session_features=True)") and "session" not in repr(plain)
    assert model.mlp.in_channels == plain.mlp.in_channels + 8
    # the same clicks in another order change only the recency of the candidates
    a = collate([session_graph([1, 2, 3], target=4)])
    b = collate([session_graph([3, 2, 1], target=4)])
    cand = torch.tensor([[1, 3, 5]])
    sa, sb = model.score(a, cand), model.score(b, cand)
    assert not torch.allclose(sa[0, :2], sb[0, :2])
    with torch.no_grad():  # without the features, the recency is invisible
        model.in_session.recency_embedding.weight.zero_()
    if name == "din":  # DIN pools without order: the same scores
        assert torch.allclose(model.score(a, cand), model.score(b, cand))
    # full-catalogue scores equal candidate scores, with the features
    full = model.score(a)
    assert torch.allclose(full[0, 1:], model.score(a, torch.arange(1, 13).view(1, -1))[0])
    model.train()
    loss = model.loss(make_batch())
    loss.backward()
    assert model.in_session.count_embedding.weight.grad is not None


def test_one_more_negative_is_a_click_of_the_session():
    torch.manual_seed(0)
    model = DIN(12, hidden_channels=4, num_negatives=3, session_features=True)
    batch = collate(
        [
            session_graph([1, 2, 3], target=2),  # a repeat: the extra negative is 1 or 3
            session_graph([4], target=4),  # its only click is the target: no such negative
            session_graph([5, 6], target=9),
        ]
    )
    seen = [set(), set(), set()]
    for _ in range(50):
        neg = model.sample_negatives(batch)
        assert neg.shape == (3, 4)
        for row, s in zip(neg.tolist(), seen, strict=True):
            s.add(row[-1])
        # the regular negatives stay outside the sessions
        assert not set(neg[0, :3].tolist()) & {1, 2, 3} and not set(neg[2, :3].tolist()) & {5, 6, 9}
        assert neg[1, 3] == neg[1, 0] and 4 not in neg[1].tolist()  # a copy of a regular one
    assert seen[0] == {1, 3} and seen[2] == {5, 6}
    logits = model.train().loss(batch)  # the loss takes the wider candidate set
    assert logits.ndim == 0
    # without the option, no negative is a click
    plain = DIN(12, hidden_channels=4, num_negatives=3)
    assert plain.sample_negatives(batch).shape == (3, 3)
    assert not set(plain.sample_negatives(batch)[0].tolist()) & {1, 2, 3}


def test_session_features_survive_a_checkpoint(tmp_path):
    from graphrec.datasets import synthetic
    from graphrec.models import build_model
    from graphrec.training import Trainer, load_model

    data = synthetic(num_sessions=60, num_items=60, num_categories=4, repeat_rate=0.5)
    model = build_model("din", dataset=data, hidden_channels=4, session_features=True)
    Trainer(model, data, None, epochs=1, run_dir=tmp_path / "run", progress=False,
            verbose=False, max_steps_per_epoch=2).fit()  # fmt: skip
    loaded = load_model(tmp_path / "run" / "best.pt").eval()
    assert loaded.session_features and loaded.config()["session_features"] is True
    batch = data.batch(torch.arange(5))
    assert torch.allclose(loaded.score(batch), model.eval().score(batch))
