"""Fused operations shared by the models."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    r"""Cross-entropy of ``h @ W.T`` over all rows of ``W`` but row 0.

    The ``B x N`` logits are turned into unnormalised probabilities
    :math:`e = \exp(z - \max z)` in place, and that one buffer is all the
    backward pass reads: the normalisation :math:`1/\sum e`, the ``1/B`` of
    the mean and the ``-1`` at each target are applied to the small ``[B, d]``
    operands of the two gradient matmuls instead of to the ``B x N`` matrix:

    .. math::
        \nabla_h = \tfrac{c}{Z} \odot (e\,W) - c\,W_{y}, \qquad
        \nabla_W = e^\top \big(\tfrac{c}{Z} \odot h\big) - c\,\mathbb{1}_{y}^\top h

    with :math:`c = 1/B` (times the incoming gradient). The math is the exact
    full softmax; a step makes three passes over the ``B x N`` buffer
    (max, exp, sum) besides the three matmuls.
    """

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, target: Tensor) -> Tensor:
        logits = h @ weight.t()
        logits[:, 0] = float("-inf")  # item 0 is padding, never a class
        target_logit = logits.gather(1, target.view(-1, 1)).view(-1)
        row_max = logits.amax(dim=1, keepdim=True)
        e = logits.sub_(row_max).exp_()
        total = e.sum(dim=1, keepdim=True)
        loss = (row_max.view(-1) + total.log().view(-1) - target_logit).mean()
        ctx.save_for_backward(h, weight, target, e, total)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        h, weight, target, e, total = ctx.saved_tensors
        c = grad_loss / h.size(0)
        row_scale = c / total  # [B, 1]
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = torch.addcmul(-c * weight[target], e @ weight, row_scale)
        if ctx.needs_input_grad[1]:
            grad_w = e.t() @ (h * row_scale)
            grad_w.index_add_(0, target, h * -c)
        return grad_h, grad_w, None


def full_softmax_cross_entropy(h: Tensor, weight: Tensor, target: Tensor) -> Tensor:
    r"""Mean cross-entropy of the scores ``h @ weight.T`` against ``target``.

    Row 0 of ``weight`` (the padding item) is excluded from the softmax.
    Equal to ``F.cross_entropy((h @ weight[1:].T), target - 1)``, computed
    with less memory traffic: one ``B x N`` buffer, three passes over it
    besides the matmuls.

    Args:
        h (Tensor [B, d]): session representations.
        weight (Tensor [N + 1, d]): item embeddings, row 0 = padding.
        target (LongTensor [B]): target item ids in ``1 .. N``.
    """
    return _FullSoftmaxCrossEntropy.apply(h, weight, target)


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
