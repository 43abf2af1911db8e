"""RepeatExplore: the mixture is a distribution, equals a dense reference, its loss is
its exact likelihood (gradients too), and a closed gate gives the plain model."""

import math

import pytest
import torch

from graphrec import SRGNN
from graphrec.data import collate, session_graph
from graphrec.models import SDM, STAMP

SESSIONS = [([1, 2, 3, 2], 2), ([4], 5), ([5, 6, 5, 7, 8], 9), ([9, 9], 9), ([3, 1], 1)]


def batch():
    return collate([session_graph(s, target=t) for s, t in SESSIONS])


def dense_reference(model, b):
    """p(i|s) written out: attention softmax per session, summed per item, a sigmoid
    gate, the plain softmax (without the session's items when masked)."""
    layer = model.repeat_explore
    h = model.session_embedding(b)
    items = model.item_vectors()
    out = []
    for row, (clicks, _) in enumerate(SESSIONS):
        q = h[row]
        logits = items @ q
        logits[0] = -math.inf
        if layer.mask_explore:
            logits[torch.tensor(clicks)] = -math.inf
        p_e = torch.softmax(logits, 0)
        energies = []
        for t, item in enumerate(clicks):
            ago = min(len(clicks) - 1 - t, layer.max_recency - 1)
            k = items[item] + layer.recency.weight[ago]
            energies.append(layer.lin_attention(torch.tanh(layer.lin_key(k) + layer.lin_query(q))))
        alpha = torch.softmax(torch.cat(energies), 0)
        p_r = torch.zeros_like(p_e)
        for t, item in enumerate(clicks):
            p_r[item] = p_r[item] + alpha[t]
        g = torch.sigmoid(layer.gate(q))[0]
        out.append(g * p_r + (1 - g) * p_e)
    return torch.stack(out)


@pytest.mark.parametrize("cls", [SRGNN, STAMP, SDM])
@pytest.mark.parametrize("mask", [False, True])
def test_mixture_is_a_distribution_equal_to_the_dense_reference(cls, mask):
    torch.manual_seed(0)
    model = cls(12, hidden_channels=6, repeat=True, mask_explore=mask).eval()
    b = batch()
    scores = model.score(b)
    expected = dense_reference(model, b)
    assert torch.allclose(scores.exp(), expected, atol=1e-6)
    assert torch.allclose(scores[:, 1:].exp().sum(1), torch.ones(len(SESSIONS)), atol=1e-6)
    assert torch.isinf(scores[:, 0]).all()


@pytest.mark.parametrize("cls", [SRGNN, STAMP, SDM])
@pytest.mark.parametrize("mask", [False, True])
def test_loss_is_the_exact_likelihood_with_its_gradients(cls, mask):
    torch.manual_seed(1)
    model = cls(12, hidden_channels=6, repeat=True, mask_explore=mask)
    b = batch()
    loss = model.loss(b)  # the fused explore path
    grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    expected = -torch.log(dense_reference(model, b)[torch.arange(len(SESSIONS)), b.y]).mean()
    ref_grads = torch.autograd.grad(expected, list(model.parameters()), allow_unused=True)
    assert torch.allclose(loss, expected, atol=1e-5)
    for g, r in zip(grads, ref_grads, strict=True):
        if r is None:
            assert g is None or torch.count_nonzero(g) == 0
        else:
            assert torch.allclose(g, r, atol=1e-5)


def test_a_closed_gate_is_the_plain_model():
    torch.manual_seed(2)
    plain = SRGNN(12, hidden_channels=6).eval()
    mixed = SRGNN(12, hidden_channels=6, repeat=True).eval()
    mixed.load_state_dict({**plain.state_dict(), **{k: v for k, v in mixed.state_dict().items()
                                                     if k.startswith("repeat_explore")}},
                          strict=True)  # fmt: skip
    with torch.no_grad():
        mixed.repeat_explore.gate.weight.zero_()
        mixed.repeat_explore.gate.bias.fill_(-1e4)  # P(repeat) = 0
    b = batch()
    expected = torch.log_softmax(plain.score(b)[:, 1:], 1)
    assert torch.allclose(mixed.score(b)[:, 1:], expected, atol=1e-5)
    assert torch.allclose(mixed.loss(b), plain.loss(b), atol=1e-5)


def test_batch_invariance_and_evaluation():
    from graphrec.datasets import synthetic
    from graphrec.evaluation import Evaluator, evaluate

    torch.manual_seed(3)
    data = synthetic(num_sessions=200, num_items=80, num_categories=4, split="test",
                     repeat_rate=0.4)  # fmt: skip
    model = STAMP(80, hidden_channels=8, repeat=True).eval()
    model.set_item_ids(data.item_ids)
    together = model.score(data.batch(torch.arange(20)))
    alone = torch.cat([model.score(data.batch(torch.tensor([i]))) for i in range(20)])
    assert torch.allclose(together, alone, atol=1e-6)
    evaluator = Evaluator((5, 20), num_items=80)
    for start in range(0, len(data), 50):
        index = torch.arange(start, min(start + 50, len(data)))
        evaluator.update(model.score(data.batch(index)), data.y[index])
    assert evaluate(model, data, ks=(5, 20)) == pytest.approx(evaluator.compute())
    from graphrec.evaluation import FaissRetriever

    # the faiss path: the index's explore candidates and the session's items, scored
    # exactly; an exact index gives the full ranking
    exact = evaluate(model, data, ks=(5, 20))
    flat = evaluate(model, data, ks=(5, 20), retriever=FaissRetriever(model.item_vectors()))
    # (an untrained STAMP ties most items: which tied items fill a list, Coverage, may differ)
    ranked = [m for m in exact if not m.startswith("Coverage")]
    assert {m: flat[m] for m in ranked} == pytest.approx({m: exact[m] for m in ranked})
    srgnn = SRGNN(80, hidden_channels=8, repeat=True, mask_explore=True).eval()
    srgnn.set_item_ids(data.item_ids)
    index = FaissRetriever(srgnn.item_vectors())
    assert evaluate(srgnn, data, ks=(5, 20), retriever=index) == pytest.approx(
        evaluate(srgnn, data, ks=(5, 20))
    )
    hnsw = evaluate(model, data, ks=(5, 20),
                    retriever=FaissRetriever(model.item_vectors(), kind="hnsw"))  # fmt: skip
    assert "ANN recall@20" in hnsw and hnsw["HR@20"] <= exact["HR@20"] + 1e-9


@pytest.mark.parametrize("mask", [False, True])
def test_mixture_topk_equals_the_full_ranking(mask):
    from graphrec.evaluation import FaissRetriever

    torch.manual_seed(4)
    model = SRGNN(12, hidden_channels=6, repeat=True, mask_explore=mask).eval()
    b = batch()
    top, scores = model.mixture_topk(b, FaissRetriever(model.item_vectors()), k=5)
    full, full_top = model.score(b).topk(5, dim=1)
    assert torch.equal(top, full_top) and torch.allclose(scores, full)


def test_options_and_repr():
    assert "repeat=True, mask_explore=True" in repr(SRGNN(5, repeat=True, mask_explore=True))
    with pytest.raises(ValueError, match="mask_explore=True needs repeat=True"):
        SRGNN(5, mask_explore=True)
    with pytest.raises(ValueError, match="softmax='full'"):
        SDM(5, repeat=True, softmax="sampled")
    assert SRGNN(5, repeat=True).config()["repeat"] is True
