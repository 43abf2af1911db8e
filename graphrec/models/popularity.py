"""Popularity baselines, scored by the same evaluator as every model."""

from __future__ import annotations

import torch
from torch import Tensor

from graphrec.data import SessionBatch, SessionDataset
from graphrec.models.base import SessionRecommender


class Popularity(SessionRecommender):
    r"""Recommends the most clicked items of the training data to everyone.

    Args:
        item_counts (Tensor [num_items + 1]): click count of every item
            (e.g. ``train_dataset.item_counts()``).
    """

    def __init__(self, item_counts: Tensor) -> None:
        super().__init__(item_counts.numel() - 1)
        counts = item_counts.float().clone()
        counts[0] = float("-inf")
        self.register_buffer("counts", counts)

    @classmethod
    def from_dataset(cls, dataset: SessionDataset):
        """The baseline of a training split: its click counts, its item ids and labels
        (so that it meets only data of the same catalogue, as every model does)."""
        model = cls(dataset.item_counts())
        model.set_item_ids(dataset.item_ids)
        model.set_labels(dataset.item_labels, dataset.user_labels)
        return model

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        scores = self.counts.expand(batch.num_sessions, -1)
        return scores.clone() if candidates is None else scores.gather(1, candidates)

    def loss(self, batch: SessionBatch) -> Tensor:
        raise TypeError(f"{type(self).__name__} is counted, not trained")

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_items})"


class SessionPopularity(Popularity):
    r"""S-POP: the items of the current session by how often it clicked them,
    ties and the rest of the catalogue by global popularity.

    .. math::
        \hat{y}_i = c_s(i) + \frac{\log(1 + c(i))}{1 + \log(1 + \max_j c(j))}

    where :math:`c_s(i)` counts clicks on :math:`i` in the session and
    :math:`c(i)` in the training data; the second term lies in :math:`[0, 1)`,
    so it only breaks ties.
    """

    def __init__(self, item_counts: Tensor) -> None:
        super().__init__(item_counts)
        prior = torch.log1p(item_counts.float())
        prior = prior / (1 + prior.max())
        prior[0] = float("-inf")
        self.counts.copy_(prior)

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        scores = self.counts.expand(batch.num_sessions, -1).clone()
        clicks = batch.x[batch.alias]
        scores.index_put_(
            (batch.click_session(), clicks),
            torch.ones_like(clicks, dtype=scores.dtype),
            accumulate=True,
        )
        return scores if candidates is None else scores.gather(1, candidates)
