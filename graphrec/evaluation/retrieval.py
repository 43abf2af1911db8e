"""Top-K retrieval of item vectors with faiss (exact or approximate)."""

from __future__ import annotations

import faiss
import numpy as np
import torch
from torch import Tensor

from graphrec.models.base import similarity

INDEX_KINDS = ("flat", "hnsw", "ivf")
METRICS = {"dot": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}


class FaissRetriever:
    r"""Nearest-item search over the item table of a retrieval model.

    Args:
        item_vectors (Tensor [num_items + 1, d]): item vectors, row 0 = padding
            (never returned), e.g. ``model.item_vectors()``.
        kind (str): ``"flat"`` (exact, ``IndexFlatIP``/``IndexFlatL2``: the
            same top-K as the torch path), ``"hnsw"`` (``IndexHNSWFlat``,
            graph-based, approximate) or ``"ivf"`` (``IndexIVFFlat``, inverted
            lists, approximate). (default: ``"flat"``)
        metric (str): ``"dot"`` (maximum inner product) or ``"l2"`` (smallest
            Euclidean distance; the scores returned are the negative squared
            distances, as the torch path scores them). Use the model's
            ``metric``. (default: ``"dot"``)
        hnsw_m (int): HNSW neighbours per node. (default: ``32``)
        ef_search (int): HNSW search breadth; higher is slower and more exact.
            (default: ``128``)
        nlist (int, optional): IVF lists (default: ``4 * sqrt(num_items)``).
        nprobe (int): IVF lists visited per query. (default: ``16``)
    """

    def __init__(
        self,
        item_vectors: Tensor,
        kind: str = "flat",
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 16,
        metric: str = "dot",
    ) -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {tuple(METRICS)}, got {metric!r}")
        faiss_metric = METRICS[metric]
        vectors = np.ascontiguousarray(item_vectors[1:].detach().float().cpu().numpy())
        num, dim = vectors.shape
        self.kind = kind
        self.metric = metric
        self.num_items = num
        flat = faiss.IndexFlatIP if metric == "dot" else faiss.IndexFlatL2
        if kind == "flat":
            index = flat(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss_metric)
            index.hnsw.efSearch = ef_search
        else:
            nlist = nlist or max(1, int(4 * num**0.5))
            quantizer = flat(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss_metric)
            index.train(vectors)
            index.nprobe = nprobe
            self._quantizer = quantizer  # keep it alive beside the index
        index.add(vectors)
        self.index = index

    def search(self, queries: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """The ``k`` best items (ids ``1 .. num_items``) and their scores per query."""
        q = np.ascontiguousarray(queries.detach().float().cpu().numpy())
        scores, labels = self.index.search(q, k)
        scores = torch.from_numpy(scores)
        if self.metric == "l2":
            scores = -scores  # faiss returns squared distances
        return torch.from_numpy(labels).long() + 1, scores

    def recall_vs_exact(self, queries: Tensor, item_vectors: Tensor, k: int = 20) -> float:
        """Mean share of the exact top-``k`` that this index also returns."""
        exact = (
            similarity(queries.float(), item_vectors.float(), self.metric).topk(k, dim=1).indices
        )
        approx, _ = self.search(queries, k)
        hits = (approx.unsqueeze(2) == exact.unsqueeze(1)).any(dim=2).sum(dim=1)
        return float(hits.double().mean() / k)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(kind={self.kind!r}, metric={self.metric!r}, "
            f"num_items={self.num_items})"
        )
