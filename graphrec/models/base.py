"""What every graphrec model shares: loss, scoring and top-K recommendation."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.checks import check_int, checked_init, warn_caller
from graphrec.data import SessionBatch, SessionDataset, collate, encode_item_ids, session_graph
from graphrec.data.dataset import integer_ids
from graphrec.data.graph import WEIGHTINGS
from graphrec.nn.field_embedding import FieldEmbedding, check_fields, encode_context, label_index
from graphrec.nn.functional import (
    GradientSink,
    full_softmax_cross_entropy,
    mm_nt,
    sink_embedding,
)
from graphrec.nn.repeat_explore import RepeatExplore


class SessionRecommender(nn.Module):
    r"""Base class of all graphrec models.

    A model reads a :class:`graphrec.data.SessionBatch` and scores items for
    the next click. Subclasses implement :meth:`score` (ranking models, such
    as DIN and DIEN, score (session, candidate) pairs) or, for retrieval
    models (SR-GNN, STAMP, AttRec, SDM), derive from
    :class:`RetrievalRecommender` and implement :meth:`~RetrievalRecommender.session_embedding`.

    Scores always follow one convention: ``scores[:, i]`` is the score of item
    ``i``; column 0 (padding) is :math:`-\infty` and never ranked.

    The model keeps the catalogue's original item ids (buffer ``item_ids``,
    set with :meth:`set_item_ids`), so that :meth:`recommend` speaks the ids
    of the user's files and a checkpoint is self-contained.

    Args:
        num_items (int): the number of real items (ids ``1 .. num_items``).
    """

    #: whether scoring the whole catalogue costs about one forward pass (True
    #: for retrieval models); rankers score each candidate separately
    cheap_full_ranking: bool = True
    #: whether the model reads a long-term history (SDM, DIN, DIEN)
    reads_history: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every model checks its constructor arguments against their annotations
        # (SRGNN(2.5) or hidden_channels="abc" fail at once, naming the argument)
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "__graphrec_checked__", False):
            cls.__init__ = checked_init(init)

    def __init__(self, num_items: int) -> None:
        super().__init__()
        check_int("num_items", num_items, minimum=1)
        self.num_items = num_items
        self.register_buffer("item_ids", torch.arange(num_items + 1), persistent=True)
        #: the catalogue's own ids when they are text (``[None, label of 1, ...]``)
        self.item_labels: list | None = None
        #: the data's own user ids (``[None, label of user 1, ...]``)
        self.user_labels: list | None = None
        #: a click log's own context values (``{field: [None, value of 1, ...]}``)
        self.context_labels: dict[str, list] = {}
        self._context_index: dict[str, dict[str, int]] = {}
        #: click counts of the training items (:func:`popularity_reference`),
        #: set by the trainer and kept in checkpoints; :meth:`check_data`
        #: compares data against them
        self.popularity_reference: Tensor | None = None
        #: the edge weighting of the session graphs the model was trained on
        #: (``"binary"`` or ``"count"``), set from the training data by the
        #: trainer and ``build_model`` and kept in checkpoints: ``recommend``
        #: builds its graphs with it, :meth:`check_data` refuses other graphs
        #: (models that read the edge weights). ``None`` until known.
        self.graph_weighting: str | None = None
        #: ``{name: largest value id}`` of the side fields the model was built
        #: with (constructor arguments of the models that take them; see :meth:`init_fields`)
        self.item_fields: dict[str, int] = {}
        self.user_fields: dict[str, int] = {}
        self.context_fields: dict[str, int] = {}
        self.item_field_embedding: FieldEmbedding | None = None
        self.user_field_embedding: FieldEmbedding | None = None
        self.context_embedding: nn.ModuleDict | None = None

    #: whether the model reads the graphs' edge weights (SR-GNN), not only the clicks
    reads_edge_weights: bool = False

    def set_graph_weighting(self, weighting: str | None) -> None:
        """Record the edge weighting of the graphs the model learns from."""
        if weighting is not None and weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.graph_weighting = weighting

    def set_labels(
        self,
        item_labels: Sequence | None = None,
        user_labels: Sequence | None = None,
        context_labels: dict[str, Sequence] | None = None,
    ):
        """Keep a click log's own ids: text item ids (``item_labels[i]`` is the
        id of compact item ``i``; entry 0, padding, is ignored), user ids, and
        the values of its context fields (``{field: [None, value of 1, ...]}``).
        :meth:`recommend` then takes and returns them; checkpoints keep them."""
        context_labels = {
            k: [None, *v[1:]] for k, v in (context_labels or {}).items() if k in self.context_fields
        }
        for key, values in context_labels.items():
            if len(values) != self.context_fields[key] + 1:
                raise ValueError(
                    f"context_labels[{key!r}] needs {self.context_fields[key] + 1} entries"
                )
        self.context_labels = context_labels
        self._context_index = label_index(context_labels)
        if item_labels is not None:
            item_labels = [None, *item_labels[1:]]
            if len(item_labels) != self.num_items + 1:
                raise ValueError(f"item_labels needs {self.num_items + 1} entries")
            if len(set(item_labels[1:])) != self.num_items:
                raise ValueError("item_labels must be distinct")
        self.item_labels = item_labels
        self.user_labels = None if user_labels is None else [None, *user_labels[1:]]
        self._label_index = self._user_index = None  # rebuilt on first use

    def set_item_ids(self, item_ids: Tensor) -> None:
        """Store the original id of every compact item id (entry 0 = padding)."""
        item_ids = torch.as_tensor(item_ids, dtype=torch.long)
        if item_ids.shape != (self.num_items + 1,):
            raise ValueError(
                f"item_ids must have {self.num_items + 1} entries, got {tuple(item_ids.shape)}"
            )
        if bool((item_ids[1:].diff() <= 0).any()):
            raise ValueError("item_ids[1:] must be strictly increasing original ids")
        self.item_ids.copy_(item_ids)

    def set_item_category(self, item_category: Tensor) -> None:
        """Store the category of every item (entry 0 = padding), for models
        built with ``num_categories > 0``; ``recommend`` attaches it to new
        sessions."""
        if getattr(self, "item_category", None) is None:
            raise ValueError(f"this {type(self).__name__} has no categories (num_categories=0)")
        item_category = torch.as_tensor(item_category, dtype=torch.long)
        if item_category.shape != (self.num_items + 1,):
            raise ValueError(f"item_category needs {self.num_items + 1} entries")
        num_categories = getattr(self, "num_categories", 0)
        if int(item_category.max()) > num_categories or int(item_category.min()) < 0:
            raise ValueError(f"categories must lie in 0..{num_categories}")
        self.item_category.copy_(item_category)

    # -- side fields --------------------------------------------------------------
    def init_fields(
        self,
        channels: int,
        item_fields: dict[str, int] | None = None,
        user_fields: dict[str, int] | None = None,
        context_fields: dict[str, int] | None = None,
    ) -> None:
        """Set up the constructor's side fields (each ``{name: largest value id}``):
        item fields and user profile fields looked up in tables the model keeps
        (:class:`graphrec.nn.FieldEmbedding`, filled by :meth:`set_item_features`
        and :meth:`set_user_features`), and context fields read from the batch
        (``context_<name>``), each embedded in ``channels``."""
        self.item_fields = check_fields(item_fields, "item_fields")
        self.user_fields = check_fields(user_fields, "user_fields")
        self.context_fields = check_fields(context_fields, "context_fields")
        num_users = getattr(self, "num_users", 0)
        if self.user_fields and not num_users:
            raise ValueError("user_fields need users (num_users > 0): they are looked up by user")
        self.item_field_embedding = (
            FieldEmbedding(self.num_items, self.item_fields, channels) if self.item_fields else None
        )
        self.user_field_embedding = (
            FieldEmbedding(num_users, self.user_fields, channels) if self.user_fields else None
        )
        self.context_embedding = (
            nn.ModuleDict(
                {
                    k: nn.Embedding(n + 1, channels, padding_idx=0)
                    for k, n in self.context_fields.items()
                }
            )
            if self.context_fields
            else None
        )

    def fields_repr(self) -> str:
        """The side fields for a model's ``__repr__`` (empty without any)."""
        text = ""
        for key in ("item_fields", "user_fields", "context_fields"):
            names = list(getattr(self, key))
            if names:
                text += f", {key}={names}"
        return text

    def reset_fields(self, std: float) -> None:
        """Value embeddings of every side field :math:`\\mathcal{N}(0, \\text{std}^2)`,
        the "unknown" rows zero."""
        for layer in (self.item_field_embedding, self.user_field_embedding):
            if layer is not None:
                layer.reset_parameters(std)
        for emb in (self.context_embedding or {}).values():
            nn.init.normal_(emb.weight, std=std)
            with torch.no_grad():
                emb.weight[0].zero_()

    def set_item_features(self, tables: dict[str, Tensor]) -> None:
        """Store the value ids of every item field (``{name: [num_items + 1]`` or
        ``[num_items + 1, W]}``, e.g. ``dataset.item_features``; fields the
        model was not built with are ignored)."""
        _set_tables(self.item_field_embedding, tables, type(self).__name__, "item")

    def set_user_features(self, tables: dict[str, Tensor]) -> None:
        """Store the value ids of every user field (``{name: [num_users + 1]}``)."""
        _set_tables(self.user_field_embedding, tables, type(self).__name__, "user")

    def user_field_vectors(self, users: Tensor) -> list[Tensor]:
        """``[B, d]`` per user field of ``users`` (ids from :func:`batch_users`)."""
        if self.user_field_embedding is None:
            return []
        return self.user_field_embedding(users)

    def context_vectors(self, batch: SessionBatch) -> list[Tensor]:
        """``[B, d]`` per context field of the batch (``context_<name>``); a batch
        without a field (``recommend`` without ``contexts``) gives its unknown
        value 0.

        Raises:
            ValueError: a value outside ``0 .. n`` of its field.
        """
        if self.context_embedding is None:
            return []
        out = []
        for name, emb in self.context_embedding.items():
            values = batch.get(f"context_{name}")
            if values is None:
                values = batch.alias.new_zeros(batch.num_sessions)
            elif not torch.compiler.is_exporting() and values.numel():
                size = self.context_fields[name]
                if int(values.min()) < 0 or int(values.max()) > size:
                    raise ValueError(
                        f"context field {name!r}: values must lie in 0..{size} (0 = unknown), "
                        f"got {int(values.min())}..{int(values.max())}"
                    )
            out.append(emb(values))
        return out

    def check_data(self, dataset: Any, what: str | None = None) -> None:
        """Refuse data of another catalogue than the model's.

        A model scores compact item ids; they mean the same items only when the
        data maps them to the same original ids. Compared: the number of items,
        the original id (or text label) of every compact id, the user labels
        and the number of users (models with users), and every item's category
        (models with categories).

        Args:
            dataset (SessionDataset): the data the model is about to meet.
            what (str, optional): how messages name the model (default: its class).

        A model trained by :class:`~graphrec.training.Trainer` (or loaded from
        its checkpoint) also keeps the click counts of its training items
        (``popularity_reference``); data whose clicks ignore that popularity
        (:func:`check_popularity`) is refused too: the same ids, but meaning
        other items (a log whose ids were reassigned). Where the ids do mean
        the same items, set ``model.popularity_reference = None``.

        Raises:
            TypeError: ``dataset`` is not a :class:`~graphrec.data.SessionDataset`.
            ValueError: the catalogues differ; the message says where first.
        """
        what = what or type(self).__name__
        if not isinstance(dataset, SessionDataset):
            raise TypeError(
                f"expected a SessionDataset (e.g. load_dataset(...)), got {type(dataset).__name__}"
            )
        name = dataset.name
        if dataset.num_items != self.num_items:
            raise ValueError(
                f"{what} has {self.num_items} items, {name} has {dataset.num_items}: "
                "they come from different catalogues"
            )
        compare_catalogues(
            (self.item_ids, self.item_labels),
            (dataset.item_ids, getattr(dataset, "item_labels", None)),
            what,
            name,
        )
        num_users = getattr(self, "num_users", 0)
        if num_users and dataset.user is not None:
            labels = getattr(dataset, "user_labels", None)
            if self.user_labels is not None and labels is not None:
                if list(self.user_labels[1:]) != list(labels[1:]):
                    raise ValueError(f"{what} and {name} have different users (users.tsv)")
            if dataset.num_users > num_users:
                raise ValueError(
                    f"{what} knows {num_users} users, {name} has user ids up to "
                    f"{dataset.num_users}: they come from different data"
                )
        category = getattr(self, "item_category", None)
        if category is not None and dataset.item_category is not None:
            if not torch.equal(category.cpu(), dataset.item_category):
                hint = ""
                if not bool(category.any()):
                    hint = (
                        f"; {what} has none set (built by hand? call set_item_category, "
                        "or build it with build_model(name, dataset))"
                    )
                raise ValueError(f"{what} and {name} give items different categories{hint}")
        _check_tables(self.item_field_embedding, dataset.item_features, what, name, "item")
        _check_tables(self.user_field_embedding, dataset.user_features, what, name, "user")
        missing = sorted(set(self.context_fields) - set(dataset.context))
        if missing:
            warn_caller(
                f"{what} reads the context field(s) {missing}, which {name} lacks: "
                "they are taken as unknown (0)"
            )
        weighting = self.graph_weighting
        if self.reads_edge_weights and weighting not in (None, dataset.weighting):
            raise ValueError(
                f"{what} learnt from {weighting!r}-weighted session graphs, {name} builds "
                f"{dataset.weighting!r}-weighted ones; load it with weighting={weighting!r}"
            )
        reference = getattr(self, "popularity_reference", None)
        if reference is not None:
            check_popularity(reference, dataset.item_counts(), what, name)

    def check_finite(self, what: str | None = None) -> None:
        """Refuse weights that hold NaN or infinity (they would score every item alike).

        Raises:
            ValueError: naming the first such tensor and how many entries are bad.
        """
        tensors = [(k, v, torch.isfinite) for k, v in self.named_parameters()]
        # buffers may hold -inf by design (the padding score of a popularity table)
        tensors += [(k, v, lambda t: ~torch.isnan(t)) for k, v in self.named_buffers()]
        for key, tensor, good in tensors:
            if tensor.is_floating_point() and not bool(good(tensor).all()):
                bad = int((~good(tensor)).sum())
                raise ValueError(
                    f"{what or type(self).__name__}: {key} holds {bad} non-finite value(s) "
                    f"(NaN or infinity) out of {tensor.numel()}; the weights are broken"
                )

    # -- to implement --------------------------------------------------------
    def config(self) -> dict:
        """The constructor arguments, as plain values (saved in checkpoints).

        Read off the constructor's signature: every argument is stored under
        its own name.
        """
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        """Scores of the next item.

        Args:
            batch (SessionBatch): ``B`` sessions.
            candidates (LongTensor [B, C], optional): item ids to score per
                session. When omitted, every item is scored.

        Returns:
            ``[B, num_items + 1]`` scores (column 0 is ``-inf``), or ``[B, C]``
            scores of the candidates.
        """
        raise NotImplementedError  # abstract

    # -- shared ---------------------------------------------------------------
    def loss(self, batch: SessionBatch) -> Tensor:
        """Cross-entropy of the next item over the full catalogue."""
        scores = self.score(batch)
        return F.cross_entropy(scores[:, 1:], batch.y - 1)

    @torch.no_grad()
    def recommend(
        self,
        sessions: Sequence[Sequence[Any]],
        k: int = 20,
        exclude_seen: bool = False,
        return_scores: bool = False,
        users: Sequence[Any] | None = None,
        histories: Sequence[Sequence[Any]] | None = None,
        contexts: Sequence[dict[str, int]] | None = None,
    ) -> Any:
        """Top-``k`` next items for sessions given in original item ids.

        Args:
            sessions: one list of original item ids per session, in click order.
            k (int): how many items to return. (default: ``20``)
            exclude_seen (bool): never recommend an item already in the
                session. (default: ``False``)
            return_scores (bool): also return the scores. (default: ``False``)
            users (list, optional): the user of each session, for models with
                users: the data's own user ids when the model knows them
                (``user_labels``, a click log's), else the dataset's compact
                ids; 0 or ``None`` = unknown.
            histories (list of lists, optional): each session's long-term
                history (original item ids, oldest first; may be empty).
            contexts (list of dicts, optional): each session's context
                fields (models with ``context_fields``; a field left out is
                unknown, 0): ``{name: value id}``, or, for a field of a click
                log's (``context_labels``), the log's own value
                (``{"device": "mobile", "hour": 9}``; one the log never showed
                is unknown, with a warning). The items' and users' own fields
                come from the tables the model keeps.

        Returns:
            LongTensor ``[S, k]`` of original item ids, best first (a list
            of ``S`` lists of the log's own ids when they are text,
            ``item_labels``), and the
            ``[S, k]`` scores when ``return_scores``). ``k`` is capped, with a
            warning, at the number of items every session can be recommended
            (without its seen items, with ``exclude_seen``; within the
            candidates, for a two-stage pipeline): padding and excluded items
            are never returned.
        """
        if not 1 <= k <= self.num_items:
            raise ValueError(f"k must lie in 1..{self.num_items}, got {k}")
        if len(sessions) == 0:
            raise ValueError("recommend() needs at least one session")
        for what, values in (("users", users), ("histories", histories), ("contexts", contexts)):
            if values is not None and len(values) != len(sessions):
                raise ValueError(f"{len(values)} {what} for {len(sessions)} sessions")
        name = type(self).__name__
        if users is not None and not getattr(self, "num_users", 0):
            warn_caller(f"{name} was trained without users: users are ignored")
            users = None
        if histories is not None and not self.reads_history:
            warn_caller(f"{name} reads no long-term history: histories are ignored")
            histories = None
        if contexts is not None and not self.context_fields:
            warn_caller(f"{name} reads no context fields: contexts are ignored")
            contexts = None
        was_training = self.training
        self.eval()
        device = self.item_ids.device
        category = getattr(self, "item_category", None)
        category = None if category is None else category.cpu()
        graphs = []
        for n, s in enumerate(sessions):
            if len(s) == 0:
                raise ValueError(f"session {n} is empty")
            try:
                compact = self._encode(s)
                history = None
                if histories is not None:
                    history = self._encode(histories[n])
                user = None if users is None else self._encode_user(users[n])
                context = None if contexts is None else self._context(contexts[n])
            except ValueError as e:
                raise ValueError(f"session {n}: {e}") from None
            weighting = self.graph_weighting or "binary"
            graph = session_graph(
                compact, weighting=weighting, user=user, category=category, history=history
            )
            for key, value in (context or {}).items():
                graph[f"context_{key}"] = value
            graphs.append(graph)
        batch = collate(graphs).to(device)
        scores = self.score(batch)
        if exclude_seen:
            seen_session = batch.batch
            scores[seen_session, batch.x] = float("-inf")
        # never return padding, an excluded item or one a pipeline did not rank
        available = int(scores.isfinite().sum(dim=1).min())
        if available == 0:
            raise ValueError("no item is left to recommend for at least one session")
        if k > available:
            warn_caller(
                f"k={k} capped at {available}: only {available} items can be recommended "
                "to every session (seen items excluded, or outside the candidates)"
            )
            k = available
        top_scores, top = scores.topk(k, dim=1)
        self.train(was_training)
        items = self.item_ids[top]
        if self.item_labels is not None:
            items = [[self.item_labels[i] for i in row] for row in top.tolist()]
        return (items, top_scores) if return_scores else items

    def _encode(self, ids: Sequence[Any]) -> Tensor:
        """Compact ids of a list of the catalogue's own ids."""
        if self.item_labels is None:
            return encode_item_ids(self.item_ids, list(ids)).cpu()
        lookup = getattr(self, "_label_index", None)
        if lookup is None:
            lookup = {label: i for i, label in enumerate(self.item_labels) if i}
            self._label_index = lookup
        unknown = [i for i in ids if i not in lookup]
        if unknown:
            raise ValueError(f"item id {unknown[0]!r} is not in the catalogue")
        return torch.tensor([lookup[i] for i in ids], dtype=torch.long)

    def _context(self, context: dict[str, Any]) -> dict[str, Tensor]:
        """A request's context fields as ``[1]`` tensors, every field of the model
        present (0 where not given): :func:`~graphrec.nn.field_embedding.encode_context`."""
        ids, notes = encode_context(context, self.context_fields, self._context_index)
        for note in notes:
            warn_caller(note)
        return {key: torch.tensor([ids.get(key, 0)]) for key in self.context_fields}

    def _encode_user(self, user: Any) -> int | None:
        if user is None:
            return None
        if self.user_labels is None:
            value = int(integer_ids([user], "user id")[0])
            if not 0 <= value <= getattr(self, "num_users", 0):
                raise ValueError(
                    f"user {value} is not a user of the training data "
                    f"(1..{getattr(self, 'num_users', 0)}; 0 = unknown)"
                )
            return value
        lookup = getattr(self, "_user_index", None)
        if lookup is None:
            lookup = {label: i for i, label in enumerate(self.user_labels) if i}
            self._user_index = lookup
        if user not in lookup:
            if user == 0:
                return 0
            raise ValueError(f"user {user!r} is not a user of the training data")
        return lookup[user]


class RetrievalRecommender(SessionRecommender):
    r"""A model that embeds a session and scores items by similarity.

    .. math::
        \hat{y}_i = \mathbf{s}^\top \mathbf{v}_i \quad (\text{metric} = \text{"dot"})
        \qquad \text{or} \qquad
        \hat{y}_i = -\lVert \mathbf{s} - \mathbf{v}_i \rVert^2 \quad (\text{"l2"})

    Subclasses implement :meth:`session_embedding` and keep their item table
    in ``self.item_embedding`` (an :class:`torch.nn.Embedding` of
    ``num_items + 1`` rows whose row 0 is the padding item, kept at zero),
    or override :meth:`item_vectors`. With ``metric = "dot"`` the loss is the
    exact full-catalogue cross-entropy, fused on a CPU
    (:func:`graphrec.nn.functional.full_softmax_cross_entropy`; on a GPU,
    ``F.cross_entropy``, which measured faster there); a model with
    another metric or loss overrides :meth:`loss`. The faiss path of the
    evaluator builds an inner-product or an L2 index after ``metric``.

    **Item fields** (``item_fields``, see :meth:`init_fields`): an item's
    vector is its own embedding plus the sum of its fields' vectors
    (:meth:`item_table`), in the session's input (:meth:`lookup_items`) and on
    the scored side alike. A sum, not a concatenation, keeps the vectors at
    ``d`` and the score an inner product with one table, so the blocked
    products, the fused softmax and the faiss index serve unchanged.

    The full-catalogue :meth:`score` is always
    ``similarity(session_embedding(batch), item_vectors(), metric)``: the
    evaluator computes :meth:`item_vectors` once per evaluation and relies on it.
    """

    item_embedding: nn.Embedding
    #: ``"dot"`` (inner product) or ``"l2"`` (negative squared Euclidean distance)
    metric: str = "dot"

    def __init__(self, num_items: int) -> None:
        super().__init__(num_items)
        #: the repeat-explore mixture over this model's softmax (``repeat=True``), or None
        self.repeat_explore: RepeatExplore | None = None
        self.repeat, self.mask_explore = False, False
        self.normalize, self.scale = False, 1.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # a model's own session_embedding gets NISER's normalisation (normalize=True),
        # written once here
        super().__init_subclass__(**kwargs)
        embed = cls.__dict__.get("session_embedding")
        if embed is not None and not getattr(embed, "__graphrec_normalized__", False):

            @functools.wraps(embed)
            def session_embedding(self, batch):
                h = embed(self, batch)
                return F.normalize(h, dim=-1) * self.scale if self.normalize else h

            session_embedding.__graphrec_normalized__ = True
            cls.session_embedding = session_embedding

    def init_normalize(self, normalize: bool, scale: float) -> None:
        """Set up the constructor's ``normalize`` / ``scale`` options (NISER):
        unit item vectors (in the input lookups and in scoring) and a unit
        session vector, the scores ``scale`` times their cosine."""
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.normalize, self.scale = normalize, float(scale)

    def session_embedding(self, batch: SessionBatch) -> Tensor:
        """``[B, d]`` session representations."""
        raise NotImplementedError  # abstract

    def item_table(self) -> Tensor:
        """``[num_items + 1, d]``: every item's own vector, plus the sum of its
        fields' vectors when the model has item fields (before ``normalize``)."""
        weight = self.item_embedding.weight
        if self.item_field_embedding is None:
            return weight
        index = torch.arange(self.num_items + 1, device=weight.device)
        return weight + self.item_field_embedding.sum(index)

    def embed_item_rows(self, index: Tensor) -> Tensor:
        """Rows ``index`` of :meth:`item_table`, computed for those rows only."""
        e = self.item_embedding(index)
        if self.item_field_embedding is None:
            return e
        return e + self.item_field_embedding.sum(index)

    def item_vectors(self) -> Tensor:
        """``[num_items + 1, d]``: the vectors sessions are scored against (unit
        vectors with ``normalize``; the padding row stays zero)."""
        if self.normalize:
            return F.normalize(self.item_table(), dim=-1)
        return self.item_table()

    def init_repeat(self, repeat: bool, mask_explore: bool, hidden_channels: int) -> None:
        """Set up the constructor's ``repeat`` / ``mask_explore`` options (every
        retrieval model takes them): :class:`graphrec.nn.RepeatExplore` on top of
        the model's own scores."""
        if mask_explore and not repeat:
            raise ValueError("mask_explore=True needs repeat=True")
        self.repeat, self.mask_explore = repeat, mask_explore
        self.repeat_explore = (
            RepeatExplore(hidden_channels, mask_explore=mask_explore) if repeat else None
        )

    @property
    def plain_similarity(self) -> bool:
        """Whether :meth:`score` is the similarity of :meth:`session_embedding` and
        :meth:`item_vectors` alone (the evaluator's blocked products rely on it);
        not so with the repeat-explore mixture."""
        return self.repeat_explore is None

    @torch.no_grad()
    def mixture_topk(self, batch: SessionBatch, index: Any, k: int) -> tuple[Tensor, Tensor]:
        """``([B, k], [B, k])``: the top-``k`` items of a repeat-aware model and their
        exact ``log p(i | s)``, the explore candidates coming from an index.

        Below the session's items, the mixture ranks items as the model's own
        scores do, so the index's top ``k`` (``k`` plus the session's length
        with ``mask_explore``, whose session items leave the explore part) and
        the session's items hold the mixture's top ``k``: they are scored
        exactly (the explore softmax's normaliser takes one pass over the
        table) and the best ``k`` kept. With an exact index this is the full
        ranking (tested).
        """
        if self.repeat_explore is None:
            raise ValueError("mixture_topk() is for repeat-aware models (repeat=True)")
        h = self.session_embedding(batch)
        longest = int(batch.click_ptr().diff().max()) if self.mask_explore else 0
        fetch = min(k + longest, self.num_items)
        found, _ = index.search(h, fetch)
        found = found.to(h.device)
        candidates = torch.cat([found, batch.sequences()[0].to(h.device)], dim=1)
        full = self.score(batch)  # exact log p(i | s) for every item: one pass
        scores = full.gather(1, candidates)
        # every candidate once (a session item the index also found, padding 0 out)
        order = candidates.argsort(dim=1, stable=True)
        sorted_ids = candidates.gather(1, order)
        repeated = torch.zeros_like(sorted_ids, dtype=torch.bool)
        repeated[:, 1:] = sorted_ids[:, 1:] == sorted_ids[:, :-1]
        drop = torch.zeros_like(repeated).scatter_(1, order, repeated) | (candidates == 0)
        scores = scores.masked_fill(drop, -math.inf)
        top_scores, pos = scores.topk(min(k, scores.size(1)), dim=1)
        return candidates.gather(1, pos), top_scores

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        items = self.item_vectors()
        if self.repeat_explore is not None:
            h = self.session_embedding(batch)
            clicks = batch.x[batch.alias]
            scores = self.repeat_explore.scores(
                similarity(h, items, self.metric), h, items[clicks], clicks,
                batch.click_session(), batch.click_ptr(),
            )  # fmt: skip
            return scores if candidates is None else scores.gather(1, candidates)
        if candidates is not None:
            items = items[candidates]
        return similarity(self.session_embedding(batch), items, self.metric)

    #: set by :meth:`loss` while it embeds the batch (see :meth:`lookup_items`)
    _sink: GradientSink | None = None

    def lookup_items(self, index: Tensor, with_fields: bool = True) -> Tensor:
        """Rows ``index`` of ``item_embedding`` (padding row 0 gets no gradient),
        plus the item fields' vectors (:meth:`embed_item_rows`) unless
        ``with_fields=False`` (SDM concatenates its fields instead).

        Inside :meth:`loss` (on a CPU) the table also receives the dense
        gradient of the full softmax, so the lookup's rows are added into
        that gradient in place (:class:`graphrec.nn.functional.GradientSink`),
        instead of autograd filling a second ``(num_items + 1) x d`` table, or
        copying the first, to sum them. Elsewhere the gradient is the usual
        dense one, as ``nn.Embedding``'s.
        """
        if with_fields and self.item_field_embedding is not None:  # the item's and its fields'
            e = self.embed_item_rows(index)
            return F.normalize(e, dim=-1) if self.normalize else e
        if self.normalize:  # NISER: unit item vectors in the input too
            return F.normalize(F.embedding(index, self.item_embedding.weight, 0), dim=-1)
        return sink_embedding(index, self.item_embedding.weight, self._sink)

    def loss(self, batch: SessionBatch) -> Tensor:
        if self.repeat_explore is not None:
            return self._repeat_loss(batch)
        if self.metric != "dot":
            return super().loss(batch)
        items = self.item_vectors()
        if items.device.type != "cpu":
            # the same exact loss; on a GPU torch's own kernels measured faster (H100, batch 100)
            return F.cross_entropy(self.session_embedding(batch) @ items[1:].t(), batch.y - 1)
        sink = GradientSink() if items is self.item_embedding.weight else None
        self._sink = sink
        try:
            h = self.session_embedding(batch)
        finally:
            self._sink = None
        return full_softmax_cross_entropy(h, items, batch.y, sink)

    def _repeat_loss(self, batch: SessionBatch) -> Tensor:
        """The mixture's exact negative log-likelihood, its explore part from the
        model's own (fused) full-catalogue cross-entropy."""
        h, explore_nll = _per_sample_ce(self, batch)
        items = self.item_vectors()
        clicks = batch.x[batch.alias]
        session = batch.click_session()
        item_logits = None
        if self.mask_explore:
            item_logits = similarity_pairs(h[session], items[clicks], self.metric)
        target_logit = similarity_pairs(h, items[batch.y], self.metric)
        nll = self.repeat_explore.nll(
            explore_nll, target_logit, h, items[clicks], clicks, session, batch.click_ptr(),
            batch.y, item_logits,
        )  # fmt: skip
        return nll.mean()


def _repeat_repr(model: RetrievalRecommender) -> str:
    """The ``normalize`` and ``repeat`` options for a model's ``__repr__``."""
    text = ""
    if model.normalize:
        text += f", normalize=True, scale={model.scale:g}"
    if model.repeat_explore is not None:
        text += ", repeat=True" + (", mask_explore=True" if model.mask_explore else "")
    return text


def _set_tables(layer: FieldEmbedding | None, tables: dict[str, Tensor], name: str, kind: str):
    if layer is None:
        raise ValueError(f"this {name} has no {kind} fields ({kind}_fields is empty)")
    missing = sorted(set(layer.fields) - set(tables))
    if missing:
        raise ValueError(
            f"{name} reads the {kind} field(s) {missing}; the tables given have {sorted(tables)}"
        )
    layer.set_tables({k: tables[k] for k in layer.fields})


def _check_tables(
    layer: FieldEmbedding | None, tables: dict[str, Tensor], what: str, name: str, kind: str
) -> None:
    """Refuse side fields that differ from the model's, or a model whose tables were
    never set (one source of truth: the tables the model keeps)."""
    if layer is None:
        return
    for field, table in layer.tables().items():
        if not bool(table.any()):
            raise ValueError(
                f"{what} has no values for its {kind} field {field!r} (built by hand? call "
                f"set_{kind}_features, or build it with build_model(name, dataset))"
            )
        data = tables.get(field)
        if data is not None and not torch.equal(
            _pad_width(table.cpu(), data), _pad_width(data, table)
        ):
            raise ValueError(f"{what} and {name} give {kind}s different values of {field!r}")


def _pad_width(table: Tensor, other: Tensor) -> Tensor:
    """``table`` padded with 0 columns to the width of ``other`` (when narrower);
    a different number of rows is left for ``torch.equal`` to refuse."""
    width = max(table.size(1), other.size(1))
    if table.size(1) == width:
        return table
    return torch.cat([table, table.new_zeros(table.size(0), width - table.size(1))], 1)


def similarity_pairs(queries: Tensor, items: Tensor, metric: str = "dot") -> Tensor:
    """``[B]``: the score of each row of ``items`` for the same row of ``queries``."""
    if metric == "dot":
        return (queries * items).sum(1)
    return -(queries - items).square().sum(1)


def compare_catalogues(
    first: tuple[Tensor, Sequence | None],
    second: tuple[Tensor, Sequence | None],
    first_name: str,
    second_name: str,
) -> None:
    """Raise unless two ``(item_ids, item_labels)`` catalogues map every compact
    id to the same original id (or text label); the message names the first
    difference."""
    (ids_a, labels_a), (ids_b, labels_b) = first, second
    if ids_a.numel() != ids_b.numel():
        raise ValueError(
            f"{first_name} has {ids_a.numel() - 1} items, {second_name} has "
            f"{ids_b.numel() - 1}: they come from different catalogues"
        )
    if labels_a is None and labels_b is None:
        ids_b = ids_b.to(ids_a.device)
        if torch.equal(ids_a[1:], ids_b[1:]):
            return
        diff = int((ids_a[1:] != ids_b[1:]).nonzero()[0, 0]) + 1
        a, b = int(ids_a[diff]), int(ids_b[diff])
    else:
        a_all = labels_a or [None, *ids_a[1:].tolist()]
        b_all = labels_b or [None, *ids_b[1:].tolist()]
        diff = next((i for i in range(1, len(a_all)) if a_all[i] != b_all[i]), None)
        if diff is None:
            return
        a, b = a_all[diff], b_all[diff]
    raise ValueError(
        f"{first_name} and {second_name} map item ids differently (item {diff} is "
        f"{a!r} in {first_name}, {b!r} in {second_name}): they come from different catalogues"
    )


#: :func:`check_popularity` decides only for catalogues of at least this many items
POPULARITY_CHECK_MIN_ITEMS = 200


def popularity_lift(reference_counts: Tensor, counts: Tensor) -> tuple[float, float]:
    """How much the clicks ``counts`` favour the items popular in ``reference_counts``.

    The lift is the mean, over the clicks, of the standardised
    ``log(1 + reference count)`` of the item clicked; ``z`` is the lift times
    the square root of the clicks' effective number (Kish's
    ``(sum c)^2 / sum c^2``): about standard normal when the ids of the two
    are unrelated. Measured (test split against training split): Diginetica
    0.99 (z = 78), YooChoose 1/64 2.79 (46), Amazon Games 1.52 (98), the
    synthetic log 1.92 (30); the same splits with their ids reassigned: |z| < 2.

    Returns:
        ``(lift, z)``, ``(0, 0)`` where either has no information.
    """
    t = torch.log1p(reference_counts[1:].double().cpu())
    spread = float(t.std()) if t.numel() > 1 else 0.0
    c = counts[1:].double().cpu()
    total = float(c.sum())
    if spread == 0 or total == 0:
        return 0.0, 0.0
    lift = float((c * (t - t.mean())).sum()) / spread / total
    effective = total**2 / float((c * c).sum())
    return lift, lift * math.sqrt(effective)


def popularity_reference(dataset: SessionDataset) -> Tensor | None:
    """``[2, num_items + 1]``: the item click counts of the even and of the odd
    full sessions of a training split (what :func:`check_popularity` compares
    data against), ``None`` when the split does not keep its sessions."""
    if dataset.sessions is None:
        return None
    items, ptr = dataset.sessions
    lengths = ptr.diff()
    odd = torch.repeat_interleave(torch.arange(lengths.numel()) % 2, lengths).bool()
    size = dataset.num_items + 1
    even_counts = torch.bincount(items[~odd], minlength=size).float()
    return torch.stack([even_counts, torch.bincount(items[odd], minlength=size).float()])


def check_popularity(reference: Tensor, counts: Tensor, what: str, name: str) -> None:
    """Refuse data whose clicks ignore the popularity of the training data.

    Data of the same catalogue favours the items that training favoured; data
    whose ids were reassigned (the same ids, meaning other items) does not.
    Decided only where it can be: a catalogue of at least
    :data:`POPULARITY_CHECK_MIN_ITEMS` items whose training popularity is
    consistent enough that a split of the training log would show a lift with
    ``z >= 10`` at the size of ``counts`` (one half of the training sessions
    measured against the other). Refused when the data's ``z`` is below 3.

    Args:
        reference (Tensor [2, N + 1]): :func:`popularity_reference` of the
            training split.
        counts (Tensor [N + 1]): the click counts of the data.
    """
    n = counts.numel() - 1
    if n < POPULARITY_CHECK_MIN_ITEMS:
        return
    expected, _ = popularity_lift(reference[0], reference[1])
    lift, z = popularity_lift(reference.sum(0), counts)
    c = counts[1:].double()
    if float(c.sum()) == 0:
        return
    effective = float(c.sum()) ** 2 / float((c * c).sum())
    expected_z = expected * math.sqrt(effective)
    if expected_z < 10 or z >= 3:
        return
    raise ValueError(
        f"the clicks of {name} do not favour the items popular in {what}'s training data "
        f"(popularity lift {lift:.2f}, z = {z:.1f}; a split of the training log gives "
        f"{expected:.2f}, z = {expected_z:.0f} at this size): its item ids likely mean "
        "other items (the same ids, reassigned). If they do mean the same items, set "
        "model.popularity_reference = None (command line: --trust-item-ids)"
    )


def _per_sample_ce(model: RetrievalRecommender, batch: SessionBatch) -> tuple[Tensor, Tensor]:
    """``(h, nll)``: the session vectors and each sample's cross-entropy over the
    catalogue (fused on a CPU).

    No :class:`~graphrec.nn.functional.GradientSink` here: the mixture's loss
    also reads the table outside the fused function (the clicks' and targets'
    vectors), and autograd may then sum the table's gradients into a new
    tensor before a sunk lookup adds its rows into the old one.
    """
    items = model.item_vectors()
    h = model.session_embedding(batch)
    if model.metric != "dot" or items.device.type != "cpu":
        logits = similarity(h, items, model.metric)[:, 1:]
        return h, F.cross_entropy(logits, batch.y - 1, reduction="none")
    return h, full_softmax_cross_entropy(h, items, batch.y, reduction="none")


def batch_users(batch: SessionBatch, num_users: int) -> Tensor:
    """LongTensor [B]: the batch's user ids, 0 (unknown) where it has none.

    A model built without users (``num_users = 0``) treats every session
    as the unknown user 0.

    Raises:
        ValueError: a user id outside ``0 .. num_users``.
    """
    user = batch.get("user")
    if user is None or num_users == 0:
        return batch.x.new_zeros(batch.num_sessions)
    if torch.compiler.is_exporting():  # an exported graph's runtime checks its users
        return user
    if user.numel() and (int(user.min()) < 0 or int(user.max()) > num_users):
        raise ValueError(
            f"user ids must lie in 0..{num_users} (0 = unknown), got "
            f"{int(user.min())}..{int(user.max())}"
        )
    return user


def user_vectors(table: nn.Embedding, users: Tensor, num_users: int) -> Tensor:
    """``[B, d]``: the vectors of ``users`` (ids from :func:`batch_users`).

    The unknown user 0 of a model with users (``num_users > 0``) is the mean of
    the known users' vectors: training samples all have their user, so a learned
    row 0 would never receive a gradient and would stay at its random start. A
    model without users (``num_users = 0``) has one learned vector, row 0, which
    every sample trains.
    """
    e = table(users)
    if num_users == 0:
        return e
    unknown = users == 0
    if torch.compiler.is_exporting() or bool(unknown.any()):
        mean = table.weight[1:].mean(0)
        e = torch.where(unknown.unsqueeze(-1), mean.to(e.dtype), e)
    return e


def similarity(queries: Tensor, items: Tensor, metric: str = "dot") -> Tensor:
    """Scores of items for queries: inner products, or negative squared distances.

    Args:
        queries (Tensor [B, d]): session vectors.
        items (Tensor): the whole table ``[num_items + 1, d]`` (row 0 =
            padding), or per-session candidate vectors ``[B, C, d]``.
        metric (str): ``"dot"`` or ``"l2"``. (default: ``"dot"``)

    Returns:
        ``[B, num_items + 1]`` (column 0 = ``-inf``) for a table, ``[B, C]``
        for candidates.
    """
    if metric not in ("dot", "l2"):
        raise ValueError(f"metric must be 'dot' or 'l2', got {metric!r}")
    if items.dim() == 3:
        if metric == "dot":
            return torch.einsum("bd,bcd->bc", queries, items)
        return -(queries.unsqueeze(1) - items).square().sum(-1)
    scores = mm_nt(queries, items)  # blocked on a CPU without autograd
    if metric == "l2":
        # -||q - v||^2 = 2 q.v - ||v||^2 - ||q||^2, one matmul for the whole block
        scores.mul_(2).sub_(items.square().sum(1)).sub_(queries.square().sum(1, keepdim=True))
    scores[:, 0] = float("-inf")
    return scores
