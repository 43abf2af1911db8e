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

    Approximate indexes return candidates; their scores are always recomputed
    exactly from the item vectors, and with ``refine > 1`` the index is asked
    for ``refine * k`` candidates of which the exact top-``k`` is kept. For
    inner products, HNSW searches by default in the Euclidean space of the
    usual MIPS reduction with ``mips="l2"`` (each item gets one more
    coordinate, :math:`\sqrt{M^2 - \lVert v \rVert^2}`, the queries a zero);
    on the trained tables measured it was not better than the graph built on
    raw inner products, the default. The defaults were chosen on trained
    embeddings (``benchmarks/bench_faiss.py``: SR-GNN on Diginetica and
    YooChoose 1/64) for a recall@20 of the exact top-20 of at least 0.95;
    :meth:`recall_vs_exact` measures it for any table, and
    :func:`~graphrec.evaluation.evaluate` reports it beside every approximate
    evaluation. Untrained, structureless tables are much harder (recall 0.3
    to 0.8 at the same settings).

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
        nprobe (int): IVF lists visited per query. (default: ``32``)
        refine (int): candidates fetched per result, re-ranked exactly.
            (default: ``1``)
        mips (str): for ``metric="dot"`` with HNSW, ``"raw"`` (inner products
            in the graph) or ``"l2"`` (the reduction above). (default: ``"raw"``)
    """

    def __init__(
        self,
        item_vectors: Tensor,
        kind: str = "flat",
        hnsw_m: int = 32,
        ef_search: int = 128,
        nlist: int | None = None,
        nprobe: int = 32,
        metric: str = "dot",
        refine: int = 1,
        mips: str = "raw",
    ) -> None:
        if kind not in INDEX_KINDS:
            raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {tuple(METRICS)}, got {metric!r}")
        if mips not in ("l2", "raw"):
            raise ValueError(f"mips must be 'l2' or 'raw', got {mips!r}")
        if refine < 1:
            raise ValueError(f"refine must be >= 1, got {refine}")
        self._vectors = item_vectors.detach().float().cpu().clone()
        self._vectors[0] = 0.0
        vectors = np.ascontiguousarray(self._vectors[1:].numpy())
        num, dim = vectors.shape
        self.kind, self.metric, self.refine = kind, metric, refine
        self.num_items = num
        self._augment = kind == "hnsw" and metric == "dot" and mips == "l2"
        faiss_metric = METRICS[metric]
        flat = faiss.IndexFlatIP if metric == "dot" else faiss.IndexFlatL2
        if kind == "flat":
            index = flat(dim)
        elif kind == "hnsw":
            if self._augment:  # MIPS -> nearest neighbour in d + 1 dimensions
                norms = (vectors.astype(np.float64) ** 2).sum(axis=1)
                extra = np.sqrt(np.maximum(norms.max() - norms, 0.0)).astype(np.float32)
                vectors = np.ascontiguousarray(np.hstack([vectors, extra[:, None]]))
                dim, faiss_metric = dim + 1, faiss.METRIC_L2
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
        """The ``k`` best items (ids ``1 .. num_items``) and their scores per query.

        A query for which the index finds fewer than ``k`` items gets id 0
        (padding) with score ``-inf`` in the missing places.
        """
        q = queries.detach().float().cpu()
        fetch = min(k * self.refine, self.num_items)
        x = q.numpy()
        if self._augment:
            x = np.hstack([x, np.zeros((x.shape[0], 1), dtype=np.float32)])
        scores, labels = self.index.search(np.ascontiguousarray(x), fetch)
        labels = torch.from_numpy(labels).long() + 1  # faiss's -1 (nothing) -> 0
        if self.kind == "flat":
            scores = torch.from_numpy(scores)
            scores = -scores if self.metric == "l2" else scores
            return labels, scores.masked_fill(labels == 0, float("-inf"))
        # exact scores of the candidates, then the exact top-k among them
        cand = self._vectors[labels]  # [Q, fetch, d]
        if self.metric == "dot":
            exact = torch.einsum("qd,qcd->qc", q, cand)
        else:
            exact = -((q.unsqueeze(1) - cand) ** 2).sum(dim=2)
        exact = exact.masked_fill(labels == 0, float("-inf"))
        top_scores, pos = exact.topk(min(k, fetch), dim=1)
        return labels.gather(1, pos), top_scores

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
