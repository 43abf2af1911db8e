"""Fused operations shared by the models."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from graphrec.memory import reusing_freed_memory

#: item rows per block of :func:`mm_nt` and of the full-softmax loss. Measured on 2 cores with
#: 43,099 items, d = 64 and 100: 1,920 beat 1,536, 1,792 and 2,112 (the loss's forward and
#: backward 7-9% faster than with 2,048, whose power-of-two rows of 8 KiB collide in cache)
MM_BLOCK = 1920


def _blocks(a: Tensor, b: Tensor, n: int, buffered: bool) -> int:
    """How many blocks of ``MM_BLOCK`` rows to multiply as a batch (0: one plain product).

    Blocked products allocate more ``M x N`` buffers; without reused memory
    (:mod:`graphrec.memory`) or caller-given buffers (``buffered``), their page
    faults cost more than the blocking saves, so they need one of the two.
    """
    if a.device.type != "cpu" or n < 2 * MM_BLOCK or a.dtype != b.dtype:
        return 0
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return 0  # the out= products below are not differentiable
    if not (buffered or reusing_freed_memory()):
        return 0
    return n // MM_BLOCK


def mm_nt(
    a: Tensor,
    b: Tensor,
    bias: Tensor | None = None,
    alpha: float = 1.0,
    out: Tensor | None = None,
    workspace: Tensor | None = None,
) -> Tensor:
    r"""``alpha * a @ b.T (+ bias)``: scores of ``M`` queries against ``N`` items.

    On a CPU the ``N`` item rows are cut into blocks of :data:`MM_BLOCK` and
    multiplied as one batched product (``torch.bmm``, whose blocks the threads
    share out), then copied into the ``[M, N]`` result, adding ``bias`` on the
    way. One ``[M, K] x [K, N]`` product over a 43,000-item catalogue streams
    its output through memory and measured 35-45% slower than the batched
    product, 25-35% slower than it with the copy (2 cores, d = 64 and 100).
    The values are the same up to float rounding. The blocked product needs
    a second ``M x N`` buffer: ``workspace``, or reused freed memory
    (:func:`graphrec.memory.reuse_freed_memory`); otherwise, on other devices,
    with autograd, or for small ``N``, this is the plain product.

    Args:
        a (Tensor [M, K]): queries.
        b (Tensor [N, K]): items (rows contiguous).
        bias (Tensor [N], optional): added to every row.
        alpha (float): scale of the product. (default: ``1``)
        out (Tensor [M, N], optional): where to write the result (contiguous).
        workspace (Tensor, optional): at least ``M * N`` elements of
            ``a``'s dtype, for the blocked product.
    """
    m, n = a.size(0), b.size(0)
    buffered = workspace is not None and workspace.numel() >= m * n and out is not None
    blocks = _blocks(a, b, n, buffered) if b.is_contiguous() else 0
    if not blocks:
        if out is None:  # differentiable
            scores = a @ b.t() if bias is None else torch.addmm(bias, a, b.t(), alpha=alpha)
            return scores * alpha if bias is None and alpha != 1 else scores
        if bias is None:
            torch.mm(a, b.t(), out=out)
            return out.mul_(alpha) if alpha != 1 else out
        return torch.addmm(bias, a, b.t(), alpha=alpha, out=out)
    if out is None:
        out = a.new_empty(m, n)
    if alpha != 1:
        a = a * alpha
    k = a.size(1)
    full = blocks * MM_BLOCK
    lhs = a.expand(blocks, m, k)
    rhs = b[:full].view(blocks, MM_BLOCK, k).transpose(1, 2)
    if buffered:
        products = torch.bmm(lhs, rhs, out=workspace[: full * m].view(blocks, m, MM_BLOCK))
    else:
        products = torch.bmm(lhs, rhs)
    body = out[:, :full].view(m, blocks, MM_BLOCK)
    if bias is None:
        body.copy_(products.transpose(0, 1))
    else:
        torch.add(products.transpose(0, 1), bias[:full].view(1, blocks, MM_BLOCK), out=body)
    if full < n:
        if bias is None:
            torch.mm(a, b[full:].t(), out=out[:, full:])
        else:
            torch.addmm(bias[full:], a, b[full:].t(), out=out[:, full:])
    return out


class GradientSink:
    """Where :func:`sink_embedding` lookups put their gradient: into the dense
    gradient that :func:`full_softmax_cross_entropy` computes for the same table.

    One sink serves one forward/backward pass. The loss's backward stores its
    table gradient in :attr:`grad`; each lookup's backward (they run later:
    their outputs feed the loss) adds its rows into that tensor in place, and
    the last one lets go of it, so that autograd hands the very tensor to the
    parameter's ``.grad``. Without a sink the two gradients meet in autograd,
    which copies the ``(num_items + 1) x d`` table once to add them.
    """

    def __init__(self) -> None:
        self.grad: Tensor | None = None
        self.pending = 0  # lookups whose backward has not run yet

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(pending={self.pending})"


class _SinkEmbedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx, index: Tensor, weight: Tensor, sink: GradientSink) -> Tensor:
        ctx.save_for_backward(index)
        ctx.sink, ctx.num_rows = sink, weight.size(0)
        sink.pending += 1
        return F.embedding(index, weight, 0)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (index,) = ctx.saved_tensors
        sink = ctx.sink
        sink.pending -= 1
        index = index.reshape(-1)
        rows = grad_out.reshape(index.numel(), -1)
        if sink.grad is None:  # no loss gradient to join: the usual dense one
            grad = rows.new_zeros(ctx.num_rows, rows.size(1)).index_add_(0, index, rows)
            grad[0] = 0.0  # padding
            return None, grad, None
        sink.grad.index_add_(0, index, rows)
        sink.grad[0] = 0.0  # padding: the loss gives it exactly 0, its lookups nothing
        if sink.pending == 0:
            sink.grad = None  # autograd's reference is then the only one: .grad takes it as is
        return None, None, None


def sink_embedding(index: Tensor, weight: Tensor, sink: GradientSink | None) -> Tensor:
    """``F.embedding(index, weight, padding_idx=0)`` whose gradient goes into ``sink``.

    Row 0 (padding) gets no gradient. With ``sink = None`` this is plain
    ``F.embedding``. Use it only for lookups whose outputs reach the loss that
    fills ``sink`` (:func:`full_softmax_cross_entropy` with the same table).
    """
    if sink is None or not torch.is_grad_enabled() or not weight.requires_grad:
        return F.embedding(index, weight, 0)
    return _SinkEmbedding.apply(index, weight, sink)


#: below this, a block's softmax value at its reference item is too small for an exact log
_EXACT_LOG = 1e-30


def _softmax_logsumexp_(x: Tensor, first: int, h: Tensor, weight: Tensor) -> Tensor:
    """Softmax each row of each block of ``x`` in place; return the rows' log-sum-exps.

    ``x`` ``[J, B, W]`` holds the logits of items ``first + j * W + i`` (item
    0, the padding, at ``-inf``). torch's softmax kernel keeps a row in cache
    for its max, ``exp`` and sum, but does not return them; the log-sum-exp of
    a row is recovered from one reference item ``r`` instead (the first of
    its block; item 1 in the block of item 0): ``p_r = exp(x_r - lse)``, so
    ``lse = x_r - log p_r``, in float64. Where ``p_r`` is too small for an
    exact log (its logit lies more than about 69 below the row's maximum),
    that row's log-sum-exp is computed again from ``h`` and ``weight``.

    Returns:
        ``[J, B]`` float64 log-sum-exps.
    """
    blocks, rows, width = x.shape

    def reference() -> Tensor:
        ref = x[:, :, 0].double()
        if first == 0:
            ref[0] = x[0, :, 1]
        return ref

    x_ref = reference()
    flat = x.view(blocks * rows, width)
    torch._softmax(flat, 1, False, out=flat)
    p_ref = reference()
    lse = x_ref.sub_(p_ref.log())
    inexact = p_ref < _EXACT_LOG
    if bool(inexact.any()):
        for j in torch.nonzero(inexact.any(1)).view(-1).tolist():
            row = torch.nonzero(inexact[j]).view(-1)
            lo = first + j * width
            logits = h[row].double() @ weight[lo : lo + width].double().t()
            if lo == 0:
                logits[:, 0] = float("-inf")
            lse[j, row] = torch.logsumexp(logits, 1)
    return lse


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    r"""Cross-entropy of ``h @ W.T`` over all rows of ``W`` but row 0.

    The items are cut into blocks of :data:`MM_BLOCK` and a tail. The
    ``B x N`` logits of the blocks are computed as one batched product
    (``torch.bmm``) into a block-major ``[blocks, B, MM_BLOCK]`` buffer,
    whose rows fit in a core's L1 cache (on this CPU the batched product
    measured 35-45% faster than one ``[B, d] x [d, N]`` product, which
    streams its output through memory). A two-level softmax reads that buffer where it
    is: each block row is turned into softmax probabilities :math:`q` in
    place by torch's fused softmax kernel, and its log-sum-exp
    :math:`\ell_{jb}` is recovered in float64 (:func:`_softmax_logsumexp_`),
    and the same for the tail. With :math:`L_b = \log \sum_j
    e^{\ell_{jb}}` and the block shares :math:`f_{jb} = e^{\ell_{jb} - L_b}`,
    the exact probabilities are :math:`p = f_{jb}\, q`; they are never
    formed: :math:`f` scales the small ``[B, d]`` operands of the gradient
    products instead, as do the ``1/B`` of the mean and the ``-1`` at each
    target:

    .. math::
        \nabla_h = c \Big(\sum_j f_j \odot (q_j W_j) - W_{y}\Big), \qquad
        \nabla_{W_j} = q_j^\top (c\, f_j \odot h) - c\,\mathbb{1}_{y}^\top h

    with :math:`c = 1/B` (times the incoming gradient). The loss of a sample
    is :math:`L_b - h_b^\top w_{y_b}`, exact however small :math:`p_y` is.
    """

    @staticmethod
    def forward(
        ctx,
        h: Tensor,
        weight: Tensor,
        target: Tensor,
        sink: GradientSink | None,
        per_sample: bool = False,
    ) -> Tensor:
        weight = weight.contiguous()
        n, d = weight.shape
        blocks = n // MM_BLOCK if MM_BLOCK > 1 and n >= 2 * MM_BLOCK else 0
        full = blocks * MM_BLOCK
        segments = []  # logits, then probabilities, [J, B, W]: the blocks, then the tail
        if blocks:
            items = weight[:full].view(blocks, MM_BLOCK, d).transpose(1, 2)
            segments.append(torch.bmm(h.expand(blocks, h.size(0), d), items))
        if full < n:
            segments.append((h @ weight[full:].t()).unsqueeze(0))
        segments[0][0, :, 0] = float("-inf")  # item 0 is padding, never a class
        firsts = (0, full)[: len(segments)]
        pairs = zip(segments, firsts, strict=True)
        lse = torch.cat([_softmax_logsumexp_(x, first, h, weight) for x, first in pairs])
        # lse: [blocks (+ 1), B]
        total = torch.logsumexp(lse, 0)  # [B]
        share = (lse - total).exp_().to(h.dtype).unsqueeze(2)  # [blocks (+ 1), B, 1]
        target = target.view(-1)
        nll = total - (h.double() * weight[target].double()).sum(1)
        ctx.save_for_backward(h, weight, target, share, *segments)
        ctx.firsts = firsts
        ctx.sink = sink
        ctx.per_sample = per_sample
        return nll.to(h.dtype) if per_sample else nll.mean().to(h.dtype)

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        h, weight, target, share, *segments = ctx.saved_tensors
        # the mean's 1/B, or each sample's own incoming gradient (a column)
        c = grad_loss.view(-1, 1) if ctx.per_sample else grad_loss / h.size(0)
        d = weight.size(1)
        # per segment: its probabilities [J, B, W], its rows of the table and its shares [J, B, 1]
        shares = share.split([q.size(0) for q in segments])
        parts = [
            (q, slice(first, first + q.size(0) * q.size(2)), f)
            for q, first, f in zip(segments, ctx.firsts, shares, strict=True)
        ]
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = weight[target].neg_()
            for q, rows, f in parts:
                grad_h += torch.bmm(q, weight[rows].view(q.size(0), -1, d)).mul_(f).sum(0)
            grad_h.mul_(c)
        if ctx.needs_input_grad[1]:
            ch = h * c
            grad_w = torch.empty_like(weight)
            for q, rows, f in parts:
                torch.bmm(q.transpose(1, 2), f * ch, out=grad_w[rows].view(q.size(0), -1, d))
            grad_w.index_add_(0, target, ch, alpha=-1)
            if ctx.sink is not None:
                ctx.sink.grad = grad_w  # the table's lookups add their rows into it
        return grad_h, grad_w, None, None, None


def full_softmax_cross_entropy(
    h: Tensor,
    weight: Tensor,
    target: Tensor,
    sink: GradientSink | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Mean cross-entropy of the scores ``h @ weight.T`` against ``target``.

    Row 0 of ``weight`` (the padding item) is excluded from the softmax.
    Equal to ``F.cross_entropy((h @ weight[1:].T), target - 1)`` up to float
    rounding (its log-sum-exps are combined in float64), computed with less
    memory traffic: one ``B x N`` buffer in the block-major layout the
    batched product writes, one fused softmax pass over it besides the three
    products, no copy of it (see :class:`_FullSoftmaxCrossEntropy`). It needs
    no :mod:`graphrec.memory` setting: it allocates what the plain
    cross-entropy does.

    Args:
        h (Tensor [B, d]): session representations.
        weight (Tensor [N + 1, d]): item embeddings, row 0 = padding.
        target (LongTensor [B]): target item ids in ``1 .. N``.
        sink (GradientSink, optional): the sink of ``weight``'s lookups
            (:func:`sink_embedding`) that built ``h``; their gradient is added
            into this loss's table gradient in place.
        reduction (str): ``"mean"``, or ``"none"`` for the ``[B]`` losses of the
            samples (their log-sum-exp less the target's logit; each row's
            gradient then takes its own incoming factor, as a mixture's loss
            needs). (default: ``"mean"``)
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return _FullSoftmaxCrossEntropy.apply(h, weight, target, sink, reduction == "none")


def timing_signal(positions: Tensor, channels: int, max_timescale: float = 1.0e4) -> Tensor:
    r"""Sinusoidal position signal of "Attention Is All You Need" (tensor2tensor layout).

    For :math:`n = \lfloor d/2 \rfloor` timescales
    :math:`\tau_j = \text{max\_timescale}^{-j / \max(n - 1, 1)}`, the signal of
    position :math:`p` is :math:`[\sin(p \tau_0), \dots, \sin(p \tau_{n-1}),
    \cos(p \tau_0), \dots, \cos(p \tau_{n-1})]`, zero-padded to ``channels``.

    Args:
        positions (Tensor [...]): positions (any shape, integer or float).
        channels (int): the signal width :math:`d`.
        max_timescale (float): the longest wavelength. (default: ``1e4``)

    Returns:
        ``[..., channels]`` float tensor.
    """
    n = channels // 2
    step = math.log(max_timescale) / max(n - 1, 1)
    inv = torch.exp(torch.arange(n, dtype=torch.float32, device=positions.device) * -step)
    angle = positions.unsqueeze(-1).float() * inv
    signal = torch.cat([angle.sin(), angle.cos()], dim=-1)
    if channels % 2:
        signal = torch.nn.functional.pad(signal, (0, 1))
    return signal


def clip_norm(x: Tensor, max_norm: float | None) -> Tensor:
    """Rows of ``x`` rescaled to an L2 norm of at most ``max_norm`` (differentiable).

    The functional form of a max-norm constraint on embeddings: the stored
    table is unchanged, every use sees the clipped vectors. ``None`` returns
    ``x`` itself.
    """
    if max_norm is None:
        return x
    norm = x.norm(dim=-1, keepdim=True)
    return x * (max_norm / norm.clamp(min=max_norm))


def masked_attention_pool(query: Tensor, keys: Tensor, mask: Tensor) -> Tensor:
    r"""Dot-product attention of one query over a padded set of keys.

    .. math::
        \alpha_k = \frac{\exp(\mathbf{q}^\top \mathbf{k}_k)}
            {\sum_{k' \in \text{real}} \exp(\mathbf{q}^\top \mathbf{k}_{k'})}, \qquad
        \mathbf{z} = \sum_{k \in \text{real}} \alpha_k \mathbf{k}_k

    Padding never takes weight; a row without any real key gives
    :math:`\mathbf{z} = \mathbf{0}`.

    Args:
        query (Tensor [B, d]): one query per row.
        keys (Tensor [B, K, d]): the keys (also the values).
        mask (BoolTensor [B, K]): real keys.

    Returns:
        ``[B, d]``.
    """
    logits = torch.einsum("bd,bkd->bk", query, keys).masked_fill(~mask, float("-inf"))
    weights = torch.softmax(logits, dim=1).nan_to_num(0.0)  # all-padding rows -> 0
    return torch.einsum("bk,bkd->bd", weights, keys)


def clicks_ago(click_session: Tensor, click_ptr: Tensor) -> Tensor:
    """LongTensor [T]: how many clicks ago each click of a batch was, within its
    session (0 for the session's last click).

    Args:
        click_session (LongTensor [T]): the session of every click, sessions
            in order (:meth:`graphrec.data.SessionData.click_session`).
        click_ptr (LongTensor [B + 1]): where each session's clicks start
            (:meth:`graphrec.data.SessionData.click_ptr`).
    """
    position = torch.arange(click_session.numel(), device=click_session.device)
    return click_ptr[1:][click_session] - 1 - position
