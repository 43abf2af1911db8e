"""Fused operations shared by the models."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class _FullSoftmaxCrossEntropy(torch.autograd.Function):
    """Cross-entropy of ``h @ W.T`` over all rows of ``W`` but row 0.

    The ``B x N`` logits are turned into the softmax gradient in place, so a
    step allocates one ``B x N`` buffer instead of the three or four
    (logits, log-softmax, their gradients) of the unfused ``matmul`` +
    ``cross_entropy``. The math is unchanged (exact full softmax).
    """

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, target: Tensor) -> Tensor:
        logits = h @ weight.t()
        logits[:, 0] = float("-inf")  # item 0 is padding, never a class
        rows = torch.arange(h.size(0), device=h.device)
        target_logit = logits[rows, target]
        row_max = logits.amax(dim=1, keepdim=True)
        probs = logits.sub_(row_max).exp_()
        total = probs.sum(dim=1, keepdim=True)
        probs.div_(total)
        loss = (row_max.squeeze(1) + total.log().squeeze(1) - target_logit).mean()
        probs[rows, target] -= 1.0  # d loss_b / d logits_b (before the 1/B of the mean)
        ctx.save_for_backward(h, weight, probs)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: Tensor):
        h, weight, grad_logits = ctx.saved_tensors
        scale = grad_loss / h.size(0)
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = (grad_logits @ weight).mul_(scale)
        if ctx.needs_input_grad[1]:
            grad_w = (grad_logits.t() @ h).mul_(scale)
        return grad_h, grad_w, None


def full_softmax_cross_entropy(h: Tensor, weight: Tensor, target: Tensor) -> Tensor:
    r"""Mean cross-entropy of the scores ``h @ weight.T`` against ``target``.

    Row 0 of ``weight`` (the padding item) is excluded from the softmax.
    Equal to ``F.cross_entropy((h @ weight[1:].T), target - 1)``, computed
    with less memory traffic.

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
