import math

import pytest
import torch

from graphrec.data import SessionDataset
from graphrec.datasets import synthetic
from graphrec.evaluation import evaluate, interacted_items, sample_negatives
from graphrec.models import Popularity, SessionPopularity


@pytest.fixture(scope="module")
def data():
    return synthetic(num_sessions=300, num_items=150, num_users=20, num_categories=5,
                     split="test")  # fmt: skip


def test_never_an_interacted_item_and_deterministic(data):
    neg = sample_negatives(data, num=50, seed=3)
    assert neg.shape == (len(data), 50)
    items, ptr = data.user_items
    for i in range(len(data)):
        u = int(data.user[i])
        seen = set(items[ptr[u] : ptr[u + 1]].tolist()) | {0, int(data.y[i])}
        row = neg[i].tolist()
        assert not seen & set(row) and len(set(row)) == 50
    fresh = synthetic(num_sessions=300, num_items=150, num_users=20, num_categories=5,
                      split="test")  # fmt: skip
    assert torch.equal(sample_negatives(fresh, num=50, seed=3), neg)
    assert not torch.equal(sample_negatives(fresh, num=50, seed=4), neg)


def test_uniform_over_the_rest():
    # one user who clicked items 1 and 2 of 5: negatives are 3, 4, 5 equally often
    items, ptr = torch.tensor([1, 2, 1, 2]), torch.tensor([0, 2, 4])
    data = SessionDataset.from_sessions(items, ptr, num_items=5)
    counts = torch.zeros(6)
    for seed in range(300):
        data.__dict__.pop("_negatives", None)
        counts += torch.bincount(sample_negatives(data, 1, seed).view(-1), minlength=6)
    assert counts[:3].sum() == 0
    assert (counts[3:] / counts.sum() - 1 / 3).abs().max() < 0.07
    with pytest.raises(ValueError, match="fewer than 4 negatives"):
        sample_negatives(data, 4, 0)


def test_sessions_without_users():
    items, ptr = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([0, 3, 5])
    data = SessionDataset.from_sessions(items, ptr, num_items=9)
    rows, seen = interacted_items(data, torch.arange(len(data)))
    by_row = [sorted(set(seen[rows == r].tolist())) for r in range(len(data))]
    assert by_row == [[1, 2, 3], [1, 2, 3], [4, 5]]


def test_sampled_metrics_equal_a_naive_loop(data):
    model = SessionPopularity(data.item_counts())
    out = evaluate(model, data, ks=(5, 10), negatives=20, negative_seed=1)
    neg = sample_negatives(data, 20, 1)
    hr = ndcg = 0.0
    for i in range(len(data)):
        scores = model.score(data.batch([i]))[0]
        target = scores[data.y[i]]
        rank = 1 + int((scores[neg[i]] >= target).sum())  # ties count against the target
        if rank <= 10:
            hr += 1
            ndcg += 1 / math.log2(rank + 1)
    assert out["HR@10 (20 neg.)"] == pytest.approx(hr / len(data))
    assert out["NDCG@10 (20 neg.)"] == pytest.approx(ndcg / len(data))
    assert "HR@10" in out and "Coverage@10 (20 neg.)" not in out
    pop = evaluate(Popularity(data.item_counts()), data, ks=(10,), negatives=20, negative_seed=1)
    assert pop["MRR@10 (20 neg.)"] != out["MRR@10 (20 neg.)"]
