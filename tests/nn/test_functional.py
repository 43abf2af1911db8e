import math

import torch

from graphrec.nn.functional import clip_norm, masked_attention_pool, timing_signal


def test_timing_signal_by_hand():
    sig = timing_signal(torch.tensor([0, 1]), 4)
    # two timescales: 1 and 1e-4; [sin, sin, cos, cos]
    assert torch.allclose(sig[0], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    expected = torch.tensor([math.sin(1), math.sin(1e-4), math.cos(1), math.cos(1e-4)])
    assert torch.allclose(sig[1], expected)
    odd = timing_signal(torch.tensor([[3]]), 5)
    assert odd.shape == (1, 1, 5) and odd[0, 0, 4] == 0


def test_clip_norm():
    x = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], requires_grad=True)
    out = clip_norm(x, 1.0)
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.3, 0.4], [0.0, 0.0]]))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert clip_norm(x, None) is x


def test_masked_attention_pool_equals_loop():
    gen = torch.Generator().manual_seed(0)
    query = torch.randn(4, 3, generator=gen)
    keys = torch.randn(4, 5, 3, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])
    out = masked_attention_pool(query, keys, mask.bool())
    for b in range(4):
        k = keys[b][mask[b].bool()]
        expected = torch.zeros(3) if len(k) == 0 else torch.softmax(k @ query[b], 0) @ k
        assert torch.allclose(out[b], expected, atol=1e-6)
