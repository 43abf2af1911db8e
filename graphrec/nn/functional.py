"""Fused operations shared by the models."""

from __future__ import annotations

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
