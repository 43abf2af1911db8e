"""Dice: the data-adaptive activation of DIN."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Dice(nn.Module):
    r"""The data-adaptive activation function from `"Deep Interest Network for
    Click-Through Rate Prediction" <https://arxiv.org/abs/1706.06978>`_
    (Zhou et al., KDD 2018), eq. (5).

    A PReLU whose rectifier point follows the distribution of its input:

    .. math::
        f(s) = p(s) \cdot s + (1 - p(s)) \cdot \alpha s, \qquad
        p(s) = \sigma\left(\frac{s - \mathrm{E}[s]}{\sqrt{\mathrm{Var}[s] + \epsilon}}\right)

    per feature, with a learned :math:`\alpha` per feature. In training
    :math:`\mathrm{E}[s]` and :math:`\mathrm{Var}[s]` are the statistics of the
    mini-batch (over the rows ``mask`` marks real, so padding never shifts
    them) and update running averages, as batch normalisation does; in
    evaluation the running averages are used, so a row's output never depends
    on the rest of the batch. The authors' two repositories differ here, and
    from this: the DIEN code (``mouna99/dien``, ``script/Dice.py``) normalises
    with the current batch's statistics in evaluation too; the DIN code
    (``zhougr1993/DeepInterestNetwork``, ``din/Dice.py``) calls
    ``tf.layers.batch_normalization`` without ``training=True``, so it reads
    moving averages that never leave their start (mean 0, variance 1): its
    :math:`s` is not normalised at all, and a learned :math:`\beta` scales it
    inside the sigmoid. graphrec follows the paper.

    Args:
        num_features (int): size of the last dimension.
        eps (float): :math:`\epsilon` (the paper's :math:`10^{-8}`). (default: ``1e-8``)
        momentum (float): weight of the new batch in the running averages.
            (default: ``0.1``)

    Shapes:
        - **input:** :math:`(*, F)`, optional mask :math:`(*)`
        - **output:** :math:`(*, F)`
    """

    def __init__(self, num_features: int, eps: float = 1e-8, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.alpha = nn.Parameter(torch.empty(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """:math:`\\alpha = 0` (as in the authors' code); running mean 0, variance 1."""
        nn.init.zeros_(self.alpha)
        self.running_mean.zero_()
        self.running_var.fill_(1.0)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.training:
            rows = x.reshape(-1, self.num_features)
            if mask is not None:
                rows = rows[mask.reshape(-1)]
            if rows.size(0) < 2:
                raise ValueError("Dice needs at least 2 real rows per batch in training")
            var, mean = torch.var_mean(rows, dim=0, unbiased=False)
            with torch.no_grad():
                unbiased = var * rows.size(0) / (rows.size(0) - 1)
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(unbiased, self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        p = torch.sigmoid((x - mean) * torch.rsqrt(var + self.eps))
        return x * (p + (1 - p) * self.alpha)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_features})"


class PReLU(nn.Module):
    r"""PReLU with one slope per feature of the **last** dimension
    (:class:`torch.nn.PReLU` takes dimension 1 as the channels):
    :math:`f(s) = \max(0, s) + a \min(0, s)`.

    Args:
        num_features (int): size of the last dimension.
        init (float): initial slope. (default: ``0.25``)
    """

    def __init__(self, num_features: int, init: float = 0.25) -> None:
        super().__init__()
        self.num_features = num_features
        self.init = init
        self.weight = nn.Parameter(torch.empty(num_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return torch.where(x >= 0, x, self.weight * x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_features})"


ACTIVATIONS = ("dice", "prelu", "sigmoid", "relu")


def make_activation(name: str, num_features: int) -> nn.Module:
    """The activation layer named ``name`` for ``num_features`` features.

    ``"dice"`` (:class:`Dice`), ``"prelu"`` (one slope per feature, 0.25 at
    start), ``"sigmoid"`` or ``"relu"``.
    """
    if name == "dice":
        return Dice(num_features)
    if name == "prelu":
        return PReLU(num_features)
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "relu":
        return nn.ReLU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")
