import math

import pytest
import torch
import torch.nn.functional as F

from graphrec.nn.functional import (
    GradientSink,
    clip_norm,
    full_softmax_cross_entropy,
    masked_attention_pool,
    mm_nt,
    sink_embedding,
    timing_signal,
)


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


# -- the full-softmax loss and its products ------------------------------------------


@pytest.fixture
def blocked(monkeypatch):
    """Blocked products on tiny tables: blocks of 3 rows, as with reused memory."""
    import graphrec.nn.functional as fn

    monkeypatch.setattr(fn, "MM_BLOCK", 3)
    monkeypatch.setattr(fn, "reusing_freed_memory", lambda: True)
    return fn


@pytest.mark.parametrize("num_rows", [6, 10, 11])  # whole blocks, and a tail of 1 or 2 rows
def test_mm_nt_blocked_equals_plain(blocked, num_rows):
    gen = torch.Generator().manual_seed(num_rows)
    a, b = torch.randn(4, 5, generator=gen), torch.randn(num_rows, 5, generator=gen)
    bias = torch.randn(num_rows, generator=gen)
    assert torch.allclose(mm_nt(a, b), a @ b.t(), atol=1e-6)
    assert torch.allclose(mm_nt(a, b, bias=bias, alpha=2), 2 * a @ b.t() + bias, atol=1e-6)
    out, workspace = torch.full((4, num_rows), math.nan), torch.empty(4 * num_rows)
    res = mm_nt(a, b, bias=bias, alpha=2, out=out, workspace=workspace)
    assert res is out and torch.allclose(out, 2 * a @ b.t() + bias, atol=1e-6)
    # the blocked product really ran: its batched part sits in the workspace
    full = num_rows // 3 * 3
    blocks = workspace[: full * 4].view(num_rows // 3, 4, 3)
    assert torch.allclose(blocks.transpose(0, 1).reshape(4, full), 2 * a @ b[:full].t(), atol=1e-6)


def test_blocked_products_stay_differentiable(blocked):
    # with autograd the plain (differentiable) product is used
    a = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(10, 5)
    mm_nt(a, b, bias=torch.ones(10), alpha=3).sum().backward()
    assert torch.allclose(a.grad, 3 * b.sum(0).expand(4, 5), atol=1e-5)


def test_mm_nt_plain_without_reused_memory(monkeypatch):
    # no reused memory and no buffers: one plain product (the blocked one allocates more)
    import graphrec.nn.functional as fn

    monkeypatch.setattr(fn, "MM_BLOCK", 3)
    monkeypatch.setattr(fn, "reusing_freed_memory", lambda: False)
    calls = []
    monkeypatch.setattr(torch, "bmm", lambda *args, **kw: calls.append(1))
    a, b = torch.randn(4, 5), torch.randn(10, 5)
    assert torch.allclose(fn.mm_nt(a, b), a @ b.t(), atol=1e-6)
    assert not calls


def _reference_loss(h, weight, target):
    """Plain cross-entropy in float64, padding row excluded."""
    logits = h.double() @ weight.double()[1:].t()
    return F.cross_entropy(logits, target - 1)


@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: logits spread over hundreds
@pytest.mark.parametrize("block", [2048, 3, 5, 11])  # one tail; blocks + tail; whole blocks
def test_full_softmax_cross_entropy_equals_cross_entropy(scale, block, monkeypatch):
    import graphrec.nn.functional as fn

    monkeypatch.setattr(fn, "MM_BLOCK", block)
    gen = torch.Generator().manual_seed(0)
    h = (scale * torch.randn(6, 4, generator=gen)).requires_grad_()
    weight = torch.randn(22, 4, generator=gen).requires_grad_()
    target = torch.tensor([1, 5, 21, 3, 3, 12])
    loss = full_softmax_cross_entropy(h, weight, target)
    h64, w64 = h.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    expected = _reference_loss(h64, w64, target)
    expected.backward()
    loss.backward()
    assert torch.allclose(loss.double(), expected, rtol=1e-6)
    assert torch.allclose(h.grad.double(), h64.grad, atol=1e-5)
    assert torch.allclose(weight.grad.double(), w64.grad, atol=1e-5)
    assert weight.grad[0].abs().sum() == 0  # padding is never a class


def test_block_logsumexp_by_hand(monkeypatch):
    # blocks of 2 items over 5 rows: blocks {0, 1}, {2, 3} and the tail {4}; each block
    # row's log-sum-exp comes from its reference item (item 1 in the first block,
    # whose item 0 is padding; the first item elsewhere) and is combined in float64
    import graphrec.nn.functional as fn

    monkeypatch.setattr(fn, "MM_BLOCK", 2)
    h = torch.tensor([[1.0, 0.0]])
    weight = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    # logits of items 1..4: 2, 0, 1, 3
    loss = full_softmax_cross_entropy(h, weight, torch.tensor([2]))
    expected = math.log(math.exp(2) + 1 + math.exp(1) + math.exp(3)) - 0.0
    assert abs(float(loss) - expected) < 1e-6
    x = h @ weight[:4].t()
    x[0, 0] = float("-inf")
    blocks = x.view(1, 2, 2).transpose(0, 1).contiguous()  # [blocks, B, width]
    monkeypatch.setattr(fn, "_EXACT_LOG", 0.0)  # from the reference items alone
    lse = fn._softmax_logsumexp_(blocks, 0, h, weight)
    assert torch.allclose(lse, torch.tensor([[2.0], [math.log(1 + math.e)]], dtype=torch.float64))
    softmax = [[0.0, 1.0], [1 / (1 + math.e), math.e / (1 + math.e)]]
    assert torch.allclose(blocks[:, 0], torch.tensor(softmax))


@pytest.mark.parametrize("block", [3, 2048])  # two blocks and a tail of 2; one tail
def test_block_logsumexp_recomputes_rows_whose_reference_underflows(block, monkeypatch):
    # reference items that score about 200 below their block's best item (item 3 in the
    # second block, item 6 in the tail; item 1 when everything is one tail): their
    # probability is 0 in float32, so those rows' log-sum-exps are computed again
    import graphrec.nn.functional as fn

    monkeypatch.setattr(fn, "MM_BLOCK", block)
    h = torch.tensor([[1.0], [0.5]], requires_grad=True)
    weight = torch.tensor([[0.0], [1.0], [2.0], [-100.0], [100.0], [3.0], [-100.0], [90.0]])
    weight.requires_grad_()
    target = torch.tensor([4, 6])
    recomputed = []
    logsumexp_rows = torch.logsumexp

    def spy(x, dim):  # a row recomputed: a log-sum-exp along dim 1 (the total runs along 0)
        if dim == 1:
            recomputed.append(tuple(x.shape))
        return logsumexp_rows(x, dim)

    monkeypatch.setattr(torch, "logsumexp", spy)
    loss = full_softmax_cross_entropy(h, weight, target)
    loss.backward()
    # both rows of the second block (3 items) and of the tail (2 items); of the one tail
    # (8 items), the first row only (the second's reference is 49.5 below: exact enough)
    assert recomputed == ([(2, 3), (2, 2)] if block == 3 else [(1, 8)])
    h64, w64 = h.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    expected = _reference_loss(h64, w64, target)
    expected.backward()
    assert torch.allclose(loss.double(), expected, rtol=1e-7)
    # gradients of about 100 (weights up to 100): float32 rounding, relative 1e-6
    assert torch.allclose(h.grad.double(), h64.grad, atol=1e-4)
    assert torch.allclose(weight.grad.double(), w64.grad, atol=1e-4)


def test_full_softmax_cross_entropy_of_hopeless_targets_is_exact():
    # the target's probability underflows float32 (a loss of about 500): -log p_y
    # would be inf; the loss is the log-sum-exp minus the target's logit instead
    h = torch.tensor([[10.0, 0.0], [0.0, 1.0]])
    weight = torch.tensor([[0.0, 0.0], [50.0, 0.0], [-0.1, 0.0], [0.0, 2.0]])
    target = torch.tensor([2, 3])  # row 0: logits 500, -1, 0; the target scores -1
    loss = full_softmax_cross_entropy(h, weight, target)
    expected = _reference_loss(h, weight, target)
    assert math.isfinite(float(loss))
    assert torch.allclose(loss.double(), expected, rtol=1e-6)
    assert float(expected) > 200


def test_sink_embedding_adds_its_rows_into_the_loss_gradient():
    gen = torch.Generator().manual_seed(2)
    weight = torch.randn(8, 3, generator=gen).requires_grad_()
    index = torch.tensor([[1, 0, 4], [4, 2, 0]])  # padding 0 gets no gradient
    target = torch.tensor([3, 7])

    def run(sink):
        weight.grad = None
        first = sink_embedding(index, weight, sink).sum(1)
        second = sink_embedding(torch.tensor([5, 5]), weight, sink)  # two lookups, one sink
        loss = full_softmax_cross_entropy(first * second, weight, target, sink)
        loss.backward()
        return weight.grad.clone()

    sink = GradientSink()
    with_sink = run(sink)
    plain = run(None)
    assert torch.allclose(with_sink, plain, atol=1e-6)
    assert with_sink[0].abs().sum() == 0
    assert sink.pending == 0 and sink.grad is None  # let go: .grad took the tensor itself


def test_sink_embedding_without_a_loss_gives_the_dense_gradient():
    weight = torch.randn(5, 2, requires_grad=True)
    index = torch.tensor([0, 3, 3, 1])
    (
        sink_embedding(index, weight, GradientSink()) * torch.arange(1.0, 9.0).view(4, 2)
    ).sum().backward()
    expected = torch.zeros(5, 2)
    expected[3] = torch.tensor([3.0 + 5.0, 4.0 + 6.0])
    expected[1] = torch.tensor([7.0, 8.0])
    assert torch.equal(weight.grad, expected)
    with torch.no_grad():  # no autograd: plain F.embedding
        assert torch.equal(sink_embedding(index, weight, GradientSink()), weight[index])


def test_per_sample_losses_and_their_gradients():
    """reduction="none": each sample's loss, and gradients with per-row factors
    equal float64 cross-entropy's."""
    import torch.nn.functional as F

    from graphrec.nn import functional as fn

    gen = torch.Generator().manual_seed(5)
    h = torch.randn(7, 6, generator=gen, requires_grad=True)
    w = torch.randn(30, 6, generator=gen, requires_grad=True)
    y = torch.randint(1, 30, (7,), generator=gen)
    factors = torch.rand(7, generator=gen)
    old = fn.MM_BLOCK
    try:
        for block in (2048, 4):
            fn.MM_BLOCK = block
            loss = fn.full_softmax_cross_entropy(h, w, y, reduction="none")
            gh, gw = torch.autograd.grad((loss * factors).sum(), (h, w))
            hd, wd = h.detach().double().requires_grad_(), w.detach().double().requires_grad_()
            ref = F.cross_entropy(hd @ wd[1:].t(), y - 1, reduction="none")
            rh, rw = torch.autograd.grad((ref * factors.double()).sum(), (hd, wd))
            assert loss.shape == (7,) and torch.allclose(loss.double(), ref, atol=1e-5)
            assert torch.allclose(gh.double(), rh, atol=1e-5)
            assert torch.allclose(gw.double(), rw, atol=1e-5)
    finally:
        fn.MM_BLOCK = old
    with pytest.raises(ValueError, match="reduction"):
        fn.full_softmax_cross_entropy(h, w, y, reduction="sum")
