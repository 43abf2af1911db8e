"""The self-attention of AttRec's short-term intent."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from graphrec.nn.functional import timing_signal


class ReLUSelfAttention(nn.Module):
    r"""Self-attention with ReLU query/key projections, from `"Next Item
    Recommendation with Self-Attention" <https://arxiv.org/abs/1808.06414>`_
    (Zhang et al., AAAI 2019), eq. (1)-(5).

    Over the :math:`L` most recent item embeddings :math:`X` (rows), with a
    sinusoidal timing signal :math:`P` added to the query and key inputs:

    .. math::
        Q' = \mathrm{ReLU}((X + P) W_Q), \qquad K' = \mathrm{ReLU}((X + P) W_K)

        S = \mathrm{softmax}\Big(\frac{Q' K'^\top}{\sqrt{d}}\Big), \qquad
        S_{ll} \leftarrow 0

        \mathbf{m} = \frac{1}{L} \sum_{l=1}^{L} (S X)_l

    The values are the embeddings themselves (no projection, no timing
    signal). ``shared_projection=True`` uses one matrix
    :math:`W_Q = W_K` (the authors' code); the diagonal of the affinity
    matrix is masked after the softmax (the authors' code), so a position
    never attends to itself and a one-item window gives
    :math:`\mathbf{m} = \mathbf{0}`. Padding positions take no weight and do
    not count in the mean. Dropout on :math:`K'` is the authors' regulariser.

    Args:
        channels (int): embedding size :math:`d`.
        shared_projection (bool): one projection for queries and keys.
            (default: ``True``)
        mask_diagonal (bool): zero the diagonal of :math:`S`. (default: ``True``)
        key_dropout (float): dropout on :math:`K'` while training. (default: ``0.0``)

    Shapes:
        - **input:** embeddings :math:`(B, L, d)`, mask :math:`(B, L)` of real
          positions, positions :math:`(B, L)` for the timing signal
        - **output:** :math:`(B, d)`
    """

    def __init__(
        self,
        channels: int,
        shared_projection: bool = True,
        mask_diagonal: bool = True,
        key_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.shared_projection = shared_projection
        self.mask_diagonal = mask_diagonal
        self.lin_query = nn.Linear(channels, channels, bias=False)
        self.lin_key = None if shared_projection else nn.Linear(channels, channels, bias=False)
        self.key_dropout = nn.Dropout(key_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform projections (the authors' initialiser)."""
        nn.init.xavier_uniform_(self.lin_query.weight)
        if self.lin_key is not None:
            nn.init.xavier_uniform_(self.lin_key.weight)

    def forward(self, x: Tensor, mask: Tensor, positions: Tensor) -> Tensor:
        inputs = x + timing_signal(positions, self.channels).to(x.dtype)
        query = torch.relu(self.lin_query(inputs))
        lin_key = self.lin_query if self.lin_key is None else self.lin_key
        key = self.key_dropout(torch.relu(lin_key(inputs)))
        logits = query @ key.transpose(1, 2) / math.sqrt(self.channels)
        logits = logits.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        if self.mask_diagonal:
            weights = weights * (1 - torch.eye(x.size(1), dtype=x.dtype, device=x.device))
        out = (weights @ x) * mask.unsqueeze(-1)  # padded query rows do not count
        return out.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, "
            f"shared_projection={self.shared_projection}, mask_diagonal={self.mask_diagonal})"
        )
