import pytest
import torch

from graphrec.nn import InSessionFeatures


def test_counts_and_recency_by_hand():
    # sessions (3, 5, 3, 7) and (4), left-aligned and padded with 0
    clicks = torch.tensor([[3, 5, 3, 7], [4, 0, 0, 0]])
    mask = torch.tensor([[True] * 4, [True, False, False, False]])
    candidates = torch.tensor([[3, 5, 7, 9], [4, 3, 0, 9]])
    count, recency = InSessionFeatures.counts(clicks, mask, candidates)
    # 3 twice, last at position 3 of 4 -> recency 2; 5 at 2 -> 3; 7 last -> 1; 9 absent
    assert count.tolist() == [[2, 1, 1, 0], [1, 0, 0, 0]]
    assert recency.tolist() == [[2, 3, 1, 0], [1, 0, 0, 0]]  # padding never matches item 0


def test_features_are_the_capped_buckets_embedded():
    torch.manual_seed(0)
    layer = InSessionFeatures(3, max_count=2, max_recency=2)
    clicks = torch.tensor([[8, 8, 8, 1, 2]])
    mask = torch.ones(1, 5, dtype=torch.bool)
    out = layer(clicks, mask, torch.tensor([[8, 1, 2, 6]]))
    assert out.shape == (1, 4, 6)
    count_rows, recency_rows = [2, 1, 1, 0], [2, 2, 1, 0]  # 8: count 3 -> 2, recency 3 -> 2
    want = torch.cat(
        [layer.count_embedding.weight[count_rows], layer.recency_embedding.weight[recency_rows]], 1
    )
    assert torch.equal(out[0], want)
    out.sum().backward()
    assert layer.count_embedding.weight.grad[0].abs().sum() > 0  # "absent" is learned too
    assert "InSessionFeatures(3, max_count=2, max_recency=2)" == repr(layer)
    with pytest.raises(ValueError, match=">= 1"):
        InSessionFeatures(0)
