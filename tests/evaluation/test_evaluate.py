import pytest
import torch

from graphrec import SRGNN, Popularity, SessionPopularity
from graphrec.data import SessionDataset, sessions_from_lists
from graphrec.datasets import synthetic
from graphrec.evaluation import (
    Evaluator,
    FaissRetriever,
    evaluate,
    evaluate_multi_target,
    evaluate_session_rec,
    rank_of_target,
    rest_of_sessions,
    split_for_multi_target,
)
from graphrec.models.base import RetrievalRecommender, similarity


@pytest.fixture(scope="module")
def data():
    kw = dict(num_sessions=400, num_items=120, num_users=30, num_categories=6)
    return synthetic(**kw, split="train"), synthetic(**kw, split="test")


@pytest.fixture(scope="module")
def model(data):
    torch.manual_seed(0)
    return SRGNN(data[0].num_items, hidden_channels=16)


def test_evaluate_equals_manual_full_ranking(data, model):
    _, test = data
    got = evaluate(model, test, ks=(5, 20), batch_size=37)
    ev = Evaluator(ks=(5, 20), num_items=test.num_items)
    with torch.no_grad():
        ev.update(model.score(test.batch(torch.arange(len(test)))), test.y)
    assert got == pytest.approx(ev.compute())


def test_faiss_flat_equals_torch_topk(data, model):
    _, test = data
    batch = test.batch(torch.arange(50))
    with torch.no_grad():
        emb = model.session_embedding(batch)
        exact = model.score(batch).topk(20, dim=1).indices
    retriever = FaissRetriever(model.item_vectors())
    top, _ = retriever.search(emb, 20)
    assert torch.equal(top, exact)
    full = evaluate(model, test, ks=(20,))
    via_faiss = evaluate(model, test, ks=(20,), retriever=retriever)
    assert via_faiss == pytest.approx(full, abs=1e-9)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_report_recall(data, model, kind):
    _, test = data
    with torch.no_grad():
        emb = model.session_embedding(test.batch(torch.arange(100)))
    retriever = FaissRetriever(model.item_vectors(), kind=kind, nlist=8, nprobe=8)
    recall = retriever.recall_vs_exact(emb, model.item_vectors(), k=10)
    assert 0.8 <= recall <= 1.0
    top, scores = retriever.search(emb, 10)
    assert top.min() >= 1 and top.max() <= model.num_items
    with torch.no_grad():  # the scores of approximate candidates are exact
        exact = model.score(test.batch(torch.arange(100))).gather(1, top)
    torch.testing.assert_close(scores, exact, atol=1e-5, rtol=1e-5)
    out = evaluate(model, test, ks=(10,), retriever=retriever)
    assert 0.8 <= out["ANN recall@10"] <= 1.0


@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_refine_and_the_mips_reduction_keep_exact_scores(data, metric):
    _, test = data
    torch.manual_seed(0)
    vectors = torch.randn(test.num_items + 1, 8)
    queries = torch.randn(30, 8)
    exact = similarity(queries, vectors, metric)
    exact[:, 0] = float("-inf")
    for kw in ({"refine": 3}, {"mips": "l2", "ef_search": 400}):
        retriever = FaissRetriever(vectors, kind="hnsw", metric=metric, **kw)
        top, scores = retriever.search(queries, 5)
        torch.testing.assert_close(scores, exact.gather(1, top))
        assert bool((scores[:, :-1] >= scores[:, 1:]).all())  # best first
        assert retriever.recall_vs_exact(queries, vectors, 5) >= 0.95


def test_candidates(data, model):
    _, test = data
    n = len(test)
    gen = torch.Generator().manual_seed(0)
    cand = torch.randint(1, test.num_items + 1, (n, 9), generator=gen)
    cand[: n // 2, 0] = test.y[: n // 2]  # target present for half the samples
    out = evaluate(model, test, ks=(10,), candidates=cand)
    assert out["HR@10"] == pytest.approx(float((cand == test.y.view(-1, 1)).any(1).double().mean()))


def test_multi_target_split_by_hand():
    items, ptr = sessions_from_lists([[1, 2, 3, 4, 5], [6, 7], [1, 2, 2, 3, 3]])
    ds = SessionDataset.from_sessions(items, ptr, 7)
    inputs, targets = split_for_multi_target(ds, 0.8)
    # cuts: int(5 * .8) = 4, int(2 * .8) = 1, 4
    assert [inputs[i].x.tolist() for i in range(3)] == [[1, 2, 3, 4], [6], [1, 2, 3]]
    assert targets.tolist() == [[5], [7], [3]]
    inputs, targets = split_for_multi_target(ds, 0.4)
    assert targets.tolist() == [[3, 4, 5], [7, 0, 0], [2, 3, 0]]


def test_multi_target_runs(data, model):
    out = evaluate_multi_target(model, data[1], ks=(10,))
    assert set(out) == {"Recall@10", "HR@10", "NDCG@10"}
    assert 0 <= out["Recall@10"] <= out["HR@10"] <= 1


def test_baselines(data):
    train, test = data
    counts = train.item_counts()
    pop = Popularity(counts)
    batch = test.batch(torch.arange(3))
    scores = pop.score(batch)
    assert torch.isneginf(scores[:, 0]).all()
    assert int(scores[0, 1:].argmax()) + 1 == int(counts[1:].argmax()) + 1
    spop = SessionPopularity(counts)
    s = spop.score(batch)
    clicked = batch.x[batch.alias][batch.click_session() == 0]
    top = s[0].topk(clicked.unique().numel()).indices
    assert set(top.tolist()) == set(clicked.tolist())
    res = evaluate(spop, test)
    assert res["HR@20"] > evaluate(pop, test)["HR@20"]
    with pytest.raises(TypeError, match="not trained"):
        pop.loss(batch)


def test_auc_of_a_retrieval_model_and_sampled_only_evaluation(data, model):
    from graphrec.evaluation import AUCEvaluator, auc_groups, sample_negatives

    _, test = data
    got = evaluate(model, test, ks=(5,), negatives=10)
    only = evaluate(model, test, ks=(5,), negatives=10, full_ranking=False)
    assert "HR@5" in got and "HR@5" not in only
    assert only == pytest.approx({k: v for k, v in got.items() if k.endswith("neg.)")})
    # the AUC of the model's own inner-product scores of the same pairs
    neg = sample_negatives(test, 10, 0)
    cand = torch.cat([test.y.view(-1, 1), neg], 1)
    with torch.no_grad():
        scores = model.score(test.batch(torch.arange(len(test))), cand)
    ev = AUCEvaluator(" (10 neg.)")
    ev.update(scores, cand == test.y.view(-1, 1), auc_groups(test))
    assert only["AUC (10 neg.)"] == pytest.approx(ev.compute()["AUC (10 neg.)"])
    assert only["GAUC (10 neg.)"] == pytest.approx(ev.compute()["GAUC (10 neg.)"])
    with pytest.raises(ValueError, match="needs negatives"):
        evaluate(model, test, full_ranking=False)


def test_auc_groups_are_users_then_sessions(data):
    from graphrec.evaluation import auc_groups

    _, test = data
    assert torch.equal(auc_groups(test), test.user)


class LastItem(RetrievalRecommender):
    """A retrieval model with small integer vectors: its scores tie heavily."""

    def __init__(self, num_items: int) -> None:
        super().__init__(num_items)
        gen = torch.Generator().manual_seed(0)
        weight = torch.randint(0, 2, (num_items + 1, 3), generator=gen).float()
        weight[0] = 0
        self.item_embedding = torch.nn.Embedding.from_pretrained(weight)

    def session_embedding(self, batch):
        last = batch.x[batch.alias[batch.click_ptr()[1:] - 1]]
        return self.item_embedding(last)


def test_torch_candidates_and_faiss_agree_on_ties(data):
    _, test = data
    model = LastItem(test.num_items)
    full = evaluate(model, test, ks=(1, 5, 20))
    via_faiss = evaluate(model, test, ks=(1, 5, 20), retriever=FaissRetriever(model.item_vectors()))
    everything = torch.arange(1, test.num_items + 1).expand(len(test), -1)
    via_candidates = evaluate(model, test, ks=(1, 5, 20), candidates=everything)
    with torch.no_grad():
        ranks = rank_of_target(model.score(test.batch(torch.arange(len(test)))), test.y)
    assert float(ranks.min()) > 1  # ties everywhere: no target is alone at the top
    expected = Evaluator(ks=(1, 5, 20))
    expected.update_ranks(ranks)
    for result in (full, via_faiss, via_candidates):
        for key, value in expected.compute().items():
            assert result[key] == pytest.approx(value, abs=1e-12), key


def test_rest_of_sessions_and_the_session_rec_protocol(data, model):
    items, ptr = sessions_from_lists([[1, 2, 3, 2], [4, 5]])
    ds = SessionDataset.from_sessions(items, ptr, 5)
    # samples, longest prefix first: (1 2 3 -> 2), (1 2 -> 3), (1 -> 2), (4 -> 5)
    assert rest_of_sessions(ds, torch.arange(4)).tolist() == [
        [2, 0, 0],
        [3, 2, 0],
        [2, 3, 2],
        [5, 0, 0],
    ]
    out = evaluate_session_rec(model, data[1], ks=(10,))
    assert set(out) == {"HR@10", "MRR@10", "P@10", "R@10", "MAP@10", "NDCG@10"}
    # next-item HR/MRR are the ordinary ones: same samples, same tie rule
    plain = evaluate(model, data[1], ks=(10,))
    assert out["HR@10"] == pytest.approx(plain["HR@10"]) and out["MRR@10"] == pytest.approx(
        plain["MRR@10"]
    )


def test_l2_model_blocked_scores_equal_the_exact_similarity(data):
    # AttRec scores by -||q - v||^2; the evaluator ranks with 2 q.v - ||v||^2 (one fused
    # matmul) in blocks of EMBED_BLOCK sessions: every metric must equal the exact path
    from graphrec.evaluation import AUCEvaluator, auc_groups, sample_negatives
    from graphrec.models import build_model

    train, test = data
    torch.manual_seed(0)
    model = build_model("attrec", dataset=train, hidden_channels=8).eval()
    assert model.metric == "l2"
    got = evaluate(model, test, ks=(5, 20), batch_size=23, negatives=10)
    with torch.no_grad():
        scores = model.score(test.batch(torch.arange(len(test))))
    ev = Evaluator(ks=(5, 20), num_items=test.num_items)
    ev.update(scores, test.y)
    neg = sample_negatives(test, 10, 0)
    cand = torch.cat([test.y.view(-1, 1), neg], 1)
    auc = AUCEvaluator(" (10 neg.)")
    auc.update(scores.gather(1, cand), cand == test.y.view(-1, 1), auc_groups(test))
    want = {**ev.compute(), **auc.compute()}
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


def test_by_length_orders_by_clicks_then_history():
    from graphrec.evaluation.evaluate import by_length

    items, ptr = sessions_from_lists([[1, 2, 3, 4], [4, 5], [5, 6, 1], [1, 2]])
    ds = SessionDataset.from_sessions(items, ptr, num_items=6)
    lengths = ds.lengths
    assert lengths.tolist() == [3, 2, 1, 1, 2, 1, 1]
    order = by_length(ds, torch.arange(len(ds)))
    assert sorted(order.tolist()) == list(range(len(ds)))
    assert lengths[order].tolist() == sorted(lengths.tolist())
    # equal lengths keep the given order (stable); a subset stays a subset
    assert all(
        order[i] < order[i + 1]
        for i in range(len(order) - 1)
        if lengths[order[i]] == lengths[order[i + 1]]
    )
    sub = torch.tensor([6, 0, 2])
    assert sorted(by_length(ds, sub).tolist()) == [0, 2, 6]
    # with histories: clicks first, then the history's length
    n = len(ds)
    history_length = torch.arange(n).flip(0)
    ds.history = (
        torch.ones(int(history_length.sum()), dtype=torch.long),
        torch.zeros(n),
        history_length,
    )
    order = by_length(ds, torch.arange(n))
    keys = [(int(lengths[i]), int(history_length[i])) for i in order]
    assert keys == sorted(keys)


def test_evaluation_does_not_depend_on_the_order_of_samples(data, model, monkeypatch):
    import importlib

    ev = importlib.import_module("graphrec.evaluation.evaluate")  # the module, not the function
    _, test = data
    got = evaluate(model, test, ks=(5, 20), batch_size=37, negatives=10)
    for reorder in (lambda ds, index: index, lambda ds, index: index.flip(0)):
        monkeypatch.setattr(ev, "by_length", reorder)
        other = evaluate(model, test, ks=(5, 20), batch_size=37, negatives=10)
        assert other.keys() == got.keys()
        for key in got:
            assert other[key] == pytest.approx(got[key], abs=1e-12), key


def test_blocked_score_products_equal_the_plain_ones(data, model, monkeypatch):
    import graphrec.nn.functional as fn

    _, test = data
    plain = evaluate(model, test, ks=(5, 20), batch_size=37)
    monkeypatch.setattr(fn, "MM_BLOCK", 16)  # 121 columns: 7 blocks and a tail
    calls = []
    bmm = torch.bmm
    monkeypatch.setattr(torch, "bmm", lambda *a, **kw: calls.append(1) or bmm(*a, **kw))
    blocked = evaluate(model, test, ks=(5, 20), batch_size=37)
    assert calls  # evaluate's buffers make the blocked products run
    for key in plain:
        assert blocked[key] == pytest.approx(plain[key], abs=1e-9), key


def test_bad_calls_fail_with_a_message():
    from graphrec import SRGNN
    from graphrec.datasets import synthetic

    test = synthetic(num_sessions=100, num_items=60, num_categories=4, split="test")
    model = SRGNN(60, hidden_channels=4)
    with pytest.raises(TypeError, match=r"expected a SessionDataset .* got list"):
        evaluate(model, [])
    with pytest.raises(ValueError, match="SRGNN has 50 items, synthetic/test has 60"):
        evaluate(SRGNN(50, hidden_channels=4), test)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        evaluate(model, test, batch_size=0)
    with pytest.raises(ValueError, match="has no samples to evaluate"):
        evaluate(model, test[0:0])
    with pytest.raises(TypeError, match="expected a graphrec model"):
        evaluate(object(), test)
