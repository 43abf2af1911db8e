"""Whether a candidate is in the session: how often, and how recently (a ranker's feature)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class InSessionFeatures(nn.Module):
    r"""Embeds, for every (session, candidate) pair, how often the candidate was
    clicked in the session and how recently: the repeat signal that a two-stage
    ranker sees beside the candidate's vector (many next clicks repeat a click
    of the session: RepeatNet, `arXiv:1812.02646 <https://arxiv.org/abs/1812.02646>`_).

    For candidate :math:`c` and a session :math:`s = (s_1, \dots, s_n)`:

    .. math::
        \text{count} = |\{j : s_j = c\}|, \qquad
        \text{recency} = n + 1 - \max\{j : s_j = c\} \quad (0 \text{ when absent}),

    so the last click has recency 1. Both are capped (``max_count``,
    ``max_recency``: every larger value shares the last bucket), embedded in
    ``channels`` each, and concatenated:

    .. math::
        \mathbf{f}(s, c) = [\mathbf{C}_{\min(\text{count}, K)} \,\|\,
                            \mathbf{R}_{\min(\text{recency}, M)}]

    Row 0 of both tables (a candidate not in the session) is learned like the
    others: "not clicked" is information too.

    Args:
        channels (int): size of each of the two embeddings.
        max_count (int): the last count bucket. (default: ``4``)
        max_recency (int): the last recency bucket. (default: ``10``)

    Shapes:
        - **input:** clicks :math:`(B, L)` (left-aligned, padded), their mask
          :math:`(B, L)`, candidates :math:`(B, C)`
        - **output:** :math:`(B, C, 2 \cdot \text{channels})`
    """

    def __init__(self, channels: int, max_count: int = 4, max_recency: int = 10) -> None:
        super().__init__()
        if channels < 1 or max_count < 1 or max_recency < 1:
            raise ValueError("channels, max_count and max_recency must be >= 1")
        self.channels = channels
        self.max_count = max_count
        self.max_recency = max_recency
        self.count_embedding = nn.Embedding(max_count + 1, channels)
        self.recency_embedding = nn.Embedding(max_recency + 1, channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.count_embedding.weight, std=0.01)
        nn.init.normal_(self.recency_embedding.weight, std=0.01)

    @staticmethod
    def counts(clicks: Tensor, mask: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """``(count, recency)`` ``[B, C]`` of each candidate in its session (uncapped)."""
        hit = (clicks.unsqueeze(1) == candidates.unsqueeze(2)) & mask.unsqueeze(1)  # [B, C, L]
        count = hit.sum(2)
        position = torch.arange(1, clicks.size(1) + 1, device=clicks.device)
        last = (hit * position).amax(2) if clicks.size(1) else count  # 1-based, 0 if absent
        length = mask.sum(1, keepdim=True)
        recency = torch.where(last > 0, length + 1 - last, torch.zeros_like(last))
        return count, recency

    def forward(self, clicks: Tensor, mask: Tensor, candidates: Tensor) -> Tensor:
        count, recency = self.counts(clicks, mask, candidates)
        return torch.cat(
            [
                self.count_embedding(count.clamp(max=self.max_count)),
                self.recency_embedding(recency.clamp(max=self.max_recency)),
            ],
            dim=-1,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.channels}, max_count={self.max_count}, "
            f"max_recency={self.max_recency})"
        )
