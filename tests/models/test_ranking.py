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
