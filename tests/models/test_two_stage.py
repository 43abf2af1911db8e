import math

import pytest
import torch

from graphrec import DIN, SRGNN, TwoStage
from graphrec.data import collate, session_graph
from graphrec.models import SessionRecommender


class Copy(SessionRecommender):
    """A ranker that returns the retriever's scores."""

    def __init__(self, retriever):
        super().__init__(retriever.num_items)
        self.inner = [retriever]

    def score(self, batch, candidates=None):
        full = self.inner[0].score(batch)
        return full if candidates is None else full.gather(1, candidates)


@pytest.fixture
def batch():
    sessions = [[1, 2, 3], [4], [5, 6, 7, 8], [2, 2]]
    return collate(
        [session_graph(s, target=t) for s, t in zip(sessions, [9, 1, 10, 3], strict=True)]
    )


def models():
    torch.manual_seed(0)
    return SRGNN(15, hidden_channels=6).eval(), DIN(15, hidden_channels=4).eval()


def test_k_equal_to_the_catalogue_is_the_rankers_full_ranking(batch):
    retriever, ranker = models()
    pipeline = TwoStage(retriever, ranker, k=15)
    assert torch.allclose(pipeline.score(batch), ranker.score(batch), atol=1e-6)


def test_a_ranker_copying_the_retriever_gives_the_retriever(batch):
    retriever, _ = models()
    pipeline = TwoStage(retriever, Copy(retriever), k=5)
    ours, theirs = pipeline.score(batch), retriever.score(batch)
    assert torch.equal(ours.topk(5).indices, theirs.topk(5).indices)
    assert (ours.isinf().sum(1) == 16 - 5).all()


def test_items_outside_the_candidates_are_minus_inf(batch):
    retriever, ranker = models()
    pipeline = TwoStage(retriever, ranker, k=3)
    scores = pipeline.score(batch)
    top = retriever.score(batch).topk(3).indices
    finite = scores.isfinite()
    assert finite.sum(1).tolist() == [3] * 4
    assert torch.equal(finite.nonzero()[:, 1].view(4, 3).sort(1).values, top.sort(1).values)
    assert scores[:, 0].eq(-math.inf).all()


def test_given_candidates_are_reranked_not_cut_off(batch):
    """Sampled candidates take the first stage's place: the ranker (or the product)
    scores each of them, inside the top-k or not; nothing is -inf."""
    retriever, ranker = models()
    cand = torch.tensor([[1, 2, 9], [4, 14, 1], [10, 11, 3], [3, 5, 6]])
    plain = TwoStage(retriever, ranker, k=3).score(batch, cand)
    assert torch.isfinite(plain).all()
    assert torch.allclose(plain, ranker.score(batch, cand).float())
    fused = TwoStage(retriever, ranker, k=3, fusion="product").score(batch, cand)
    expected = torch.log_softmax(retriever.score(batch, cand), 1) + torch.nn.functional.logsigmoid(
        ranker.score(batch, cand)
    )
    assert torch.allclose(fused, expected, atol=1e-6)


def test_evaluator_and_recommend_work_on_the_pipeline():
    from graphrec.datasets import synthetic
    from graphrec.evaluation import evaluate
    from graphrec.models import build_model

    data = synthetic(num_sessions=200, num_items=100, num_users=20, num_categories=5, split="test")
    torch.manual_seed(0)
    retriever = build_model("srgnn", dataset=data, hidden_channels=8).eval()
    ranker = build_model("din", dataset=data, hidden_channels=4).eval()
    pipeline = TwoStage(retriever, ranker, k=10)
    got = evaluate(pipeline, data, ks=(5, 10), negatives=20)
    first = evaluate(retriever, data, ks=(10,))
    assert got["HR@10"] <= first["HR@10"] + 1e-12  # the first stage is the ceiling
    # the sampled metrics re-rank the sampled candidates: the ranker's own figures, and
    # the product's differ (they were all the first stage's recall@k before)
    alone = evaluate(ranker, data, ks=(5, 10), negatives=20, full_ranking=False)
    assert got["AUC (20 neg.)"] == pytest.approx(alone["AUC (20 neg.)"])
    assert got["HR@5 (20 neg.)"] == pytest.approx(alone["HR@5 (20 neg.)"])
    fused = evaluate(TwoStage(retriever, ranker, k=10, fusion="product"), data, ks=(5, 10),
                     negatives=20)  # fmt: skip
    assert fused["AUC (20 neg.)"] != pytest.approx(got["AUC (20 neg.)"])
    assert got["HR@5 (20 neg.)"] != pytest.approx(got["HR@10 (20 neg.)"])
    top = pipeline.recommend([data.decode(torch.tensor([1, 2])).tolist()], k=10)
    assert top.shape == (1, 10)


def test_mismatched_models_are_refused():
    retriever, ranker = models()
    with pytest.raises(ValueError, match="items"):
        TwoStage(SRGNN(10), ranker)
    with pytest.raises(ValueError, match="k must"):
        TwoStage(retriever, ranker, k=16)
    assert "k=4" in str(TwoStage(retriever, ranker, k=4))
    with pytest.raises(
        ValueError, match="roles look swapped: retrieve with SRGNN, re-rank with DIN"
    ):
        TwoStage(ranker, retriever)


def test_product_fusion_by_hand(batch):
    retriever, ranker = models()
    pipeline = TwoStage(retriever, ranker, k=4, fusion="product")
    scores = pipeline.score(batch)
    first, top = retriever.score(batch).topk(4, dim=1)
    expected = torch.log_softmax(first, 1) + torch.nn.functional.logsigmoid(
        ranker.score(batch, top)
    )
    assert torch.allclose(scores.gather(1, top), expected, atol=1e-6)
    assert (scores.isfinite().sum(1) == 4).all()
    assert "fusion='product'" in str(pipeline)
    with pytest.raises(ValueError, match="fusion"):
        TwoStage(retriever, ranker, fusion="sum")
