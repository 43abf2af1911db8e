import math

import torch

from graphrec.nn import ReLUSelfAttention
from graphrec.nn.functional import timing_signal


def loop_reference(layer, x, mask, positions):
    out = []
    for b in range(x.size(0)):
        real = mask[b]
        xb, pb = x[b][real], positions[b][real]
        inputs = xb + timing_signal(pb, layer.channels)
        wq = layer.lin_query.weight
        wk = wq if layer.lin_key is None else layer.lin_key.weight
        q, k = torch.relu(inputs @ wq.t()), torch.relu(inputs @ wk.t())
        s = torch.softmax(q @ k.t() / math.sqrt(layer.channels), dim=1)
        if layer.mask_diagonal:
            s = s * (1 - torch.eye(len(xb)))
        out.append((s @ xb).mean(0))
    return torch.stack(out)


def test_equals_loop_reference():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]).bool()
    positions = torch.arange(4).expand(3, 4)
    for shared in (True, False):
        for diag in (True, False):
            layer = ReLUSelfAttention(6, shared_projection=shared, mask_diagonal=diag).eval()
            expected = loop_reference(layer, x, mask, positions)
            assert torch.allclose(layer(x, mask, positions), expected, atol=1e-6)


def test_one_item_window_is_zero_with_masked_diagonal():
    layer = ReLUSelfAttention(4)
    out = layer(torch.randn(1, 1, 4), torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 1))
    assert out.abs().sum() == 0


def test_padding_changes_nothing_and_repr():
    torch.manual_seed(1)
    layer = ReLUSelfAttention(5).eval()
    x = torch.randn(1, 3, 5)
    mask = torch.ones(1, 3, dtype=torch.bool)
    pos = torch.arange(3).view(1, 3)
    padded = torch.cat([x, torch.randn(1, 2, 5)], dim=1)
    pmask = torch.tensor([[True, True, True, False, False]])
    ppos = torch.arange(5).view(1, 5)
    assert torch.allclose(layer(x, mask, pos), layer(padded, pmask, ppos), atol=1e-6)
    assert str(layer) == "ReLUSelfAttention(5, shared_projection=True, mask_diagonal=True)"
