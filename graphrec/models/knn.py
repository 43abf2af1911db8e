r"""Session-based nearest neighbours: SKNN, V-SKNN, STAN and VSTAN, vectorised.

The four methods of the session-rec framework (Ludewig et al., UMUAI 2021),
which beat many neural models on the standard benchmarks. Each scores the next
item of a session from the training sessions that share items with it:

1. **candidates**: every training session that contains an item of the current
   session;
2. **sample**: the ``sample_size`` most recent of them;
3. **neighbours**: the ``k`` of those most similar to the current session
   (ties, to 12 decimals: the more recent session first; session-rec leaves
   them to a set's iteration order);
4. **scores**: every item of a neighbour gets the neighbour's similarity
   (weighted, per method), summed over neighbours.

Everything runs as tensor operations over a whole batch, never a Python loop
per session: the (session, shared item, neighbour) triples come from an
item-to-sessions index; the similarities are segment sums over them, the
sample and the neighbours segment ranks, and the scores one scatter. Tested
against line-by-line re-implementations of session-rec's ``knn/sknn.py``,
``vsknn.py``, ``stan.py`` and ``vstan.py`` loops.

**Time.** graphrec's session files carry no timestamps, only the time order of
the sessions. "Recent" is that order, and STAN's session recency decay
:math:`\exp(-\Delta t / \lambda_{snh})` counts :math:`\Delta t` in training
sessions (the number of sessions between a neighbour and the end of training;
the current session's own time is the same factor for all its neighbours, so
it never changes a ranking). ``lambda_snh`` is therefore a number of sessions,
not of days as in session-rec.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from graphrec.data import SessionBatch, SessionDataset
from graphrec.data.dataset import _positions
from graphrec.data.graph import _ptr
from graphrec.models.base import SessionRecommender


class SessionKNN(SessionRecommender):
    r"""SKNN (Jannach & Ludewig, RecSys 2017): session-based k nearest neighbours.

    .. math::
        \mathrm{sim}(s, n) = \frac{|I_s \cap I_n|}{|I_s \cup I_n|}, \qquad
        \hat{y}_i = \sum_{n \in N_k(s)} \mathrm{sim}(s, n)\, [i \in I_n]

    (Jaccard on the item sets; session-rec's ``ContextKNN`` defaults). The
    subclasses change the weights; every one shares the neighbourhood search.

    The model is not trained: :meth:`fit` indexes the training sessions, and
    the scores are those of the full catalogue (``scores[:, 0] = -inf``; items
    that no neighbour holds score 0 and tie, counted against the target).

    Args:
        num_items (int): the number of real items (ids ``1 .. num_items``).
        k (int): neighbours per session. (default: ``100``)
        sample_size (int): the most recent candidates the neighbours are
            chosen from. (default: ``1000``)

    Shapes:
        - **input:** a :class:`graphrec.data.SessionBatch` (its clicks, in order)
        - **output:** :math:`(B, \text{num\_items} + 1)`
    """

    def __init__(self, num_items: int, k: int = 100, sample_size: int = 1000) -> None:
        super().__init__(num_items)
        self.k = k
        self.sample_size = sample_size
        self.num_sessions = 0
        for name in ("session_ptr", "session_items", "session_last", "item_ptr",
                     "item_sessions", "item_last", "item_clicks"):  # fmt: skip
            self.register_buffer(name, torch.zeros(1, dtype=torch.long), persistent=True)

    def loss(self, batch: SessionBatch) -> Tensor:
        raise TypeError(f"{type(self).__name__} is fitted (fit()), not trained")

    # -- the index ------------------------------------------------------------------
    def fit(self, data: SessionDataset | tuple[Tensor, Tensor]) -> SessionKNN:
        """Index the training sessions: ``data`` is a split keeping its full sessions
        (their ids and labels are taken), or ``(items, ptr)`` in time order.

        For every session, its distinct items and the last position (1-based) of
        each; for every item, the sessions holding it, with that position.
        """
        if isinstance(data, SessionDataset):
            if data.sessions is None:
                raise ValueError(f"{data.name} does not keep its full sessions")
            self.set_item_ids(data.item_ids)
            self.set_labels(data.item_labels, data.user_labels)
            items, ptr = data.sessions
        else:
            items, ptr = data
        items, ptr = torch.as_tensor(items, dtype=torch.long), torch.as_tensor(ptr)
        if items.numel() and (int(items.min()) < 1 or int(items.max()) > self.num_items):
            raise ValueError(f"item ids must lie in 1..{self.num_items}")
        lengths = ptr.diff()
        num_sessions = lengths.numel()
        session = torch.repeat_interleave(torch.arange(num_sessions), lengths)
        position = torch.arange(items.numel()) - ptr[:-1][session] + 1
        size = self.num_items + 1
        key, inverse = torch.unique(session * size + items, return_inverse=True)
        last = torch.zeros(key.numel(), dtype=torch.long).scatter_reduce_(
            0, inverse, position, reduce="amax"
        )
        pair_session, pair_item = key // size, key % size  # sorted by session, then item
        self.session_ptr = _ptr(torch.bincount(pair_session, minlength=num_sessions))
        self.session_items, self.session_last = pair_item, last
        by_item = torch.argsort(pair_item, stable=True)  # each item's sessions in time order
        self.item_ptr = _ptr(torch.bincount(pair_item, minlength=size))
        self.item_sessions, self.item_last = pair_session[by_item], last[by_item]
        self.item_clicks = torch.bincount(items, minlength=size)
        self.num_sessions = num_sessions
        return self

    # -- what the methods differ in (SKNN's here) -----------------------------------
    def prefix_weights(self, last_position: Tensor, length: Tensor) -> Tensor:
        """The weight of each distinct item of the current session, from the
        position (1-based) of its last click and the session's length."""
        return torch.ones_like(last_position, dtype=torch.float64)

    def similarity(self, pairs: dict[str, Tensor]) -> Tensor:
        """Similarity of each (session, candidate) pair (see :meth:`_pairs`)."""
        union = pairs["distinct"] + pairs["neighbour_size"] - pairs["shared"]
        return pairs["shared"] / union

    def neighbour_weight(self, pairs: dict[str, Tensor]) -> Tensor:
        """A factor of each neighbour's contribution (1 for SKNN)."""
        return torch.ones_like(pairs["shared"])

    def item_weight(self, pairs: dict[str, Tensor], position: Tensor, item: Tensor) -> Tensor:
        """A factor of each (neighbour, item) contribution, from the item's last
        position in the neighbour (1 for SKNN)."""
        return torch.ones_like(position, dtype=torch.float64)

    #: whether the current session's own items are scored (session-rec's ``remind``)
    remind: bool = True

    # -- the neighbourhood, vectorised ------------------------------------------------
    def _pairs(self, batch: SessionBatch) -> dict[str, Tensor]:
        """Every (session, sampled candidate) pair of the batch, with what the
        similarities and weights are made of."""
        if self.num_sessions == 0:
            raise ValueError(f"{type(self).__name__} has no training sessions: call fit() first")
        device = self.item_ptr.device
        clicks = batch.x[batch.alias].to(device)
        owner = batch.click_session().to(device)
        click_ptr = batch.click_ptr().to(device)
        position = torch.arange(clicks.numel(), device=device) - click_ptr[:-1][owner] + 1
        length = click_ptr.diff()
        size = self.num_items + 1
        # the distinct items of each session, with the position of their last click
        key, inverse = torch.unique(owner * size + clicks, return_inverse=True)
        last = torch.zeros(key.numel(), dtype=torch.long, device=device)
        last.scatter_reduce_(0, inverse, position, reduce="amax")
        p_session, p_item = key // size, key % size
        weight = self.prefix_weights(last, length[p_session])
        distinct = torch.bincount(p_session, minlength=length.numel())
        weight_sq = torch.zeros(length.numel(), dtype=torch.float64, device=device)
        weight_sq.index_add_(0, p_session, weight * weight)
        # (session, shared item, candidate) triples, from the item -> sessions index
        starts = self.item_ptr[p_item]
        counts = self.item_ptr[p_item + 1] - starts
        where = _positions(starts, counts)
        t_prefix = torch.repeat_interleave(torch.arange(key.numel(), device=device), counts)
        t_session = p_session[t_prefix]
        t_candidate = self.item_sessions[where]
        # one row per (session, candidate): ascending candidate within each session
        pair_key, pair_of = torch.unique(
            t_session * self.num_sessions + t_candidate, return_inverse=True
        )
        pair_session = pair_key // self.num_sessions
        pair_candidate = pair_key % self.num_sessions
        n = pair_key.numel()
        shared = torch.zeros(n, dtype=torch.float64, device=device)
        shared.index_add_(0, pair_of, torch.ones_like(pair_of, dtype=torch.float64))
        shared_weight = torch.zeros(n, dtype=torch.float64, device=device)
        shared_weight.index_add_(0, pair_of, weight[t_prefix])
        last_in_session = torch.zeros(n, dtype=torch.long, device=device)
        last_in_session.scatter_reduce_(0, pair_of, last[t_prefix], reduce="amax")
        last_in_candidate = torch.zeros(n, dtype=torch.long, device=device)
        last_in_candidate.scatter_reduce_(0, pair_of, self.item_last[where], reduce="amax")
        # the sample: each session's sample_size most recent candidates
        group_end = _ptr(torch.bincount(pair_session, minlength=length.numel()))[1:]
        from_end = group_end[pair_session] - 1 - torch.arange(n, device=device)
        keep = from_end < self.sample_size
        pairs = {
            "session": pair_session[keep],
            "candidate": pair_candidate[keep],
            "shared": shared[keep],
            "shared_weight": shared_weight[keep],
            "last_in_session": last_in_session[keep],
            "last_in_candidate": last_in_candidate[keep],
        }
        s = pairs["session"]
        pairs["length"] = length[s].double()
        pairs["distinct"] = distinct[s].double()
        pairs["weight_sq"] = weight_sq[s]
        c = pairs["candidate"]
        pairs["neighbour_size"] = (self.session_ptr[c + 1] - self.session_ptr[c]).double()
        pairs["age"] = (self.num_sessions - 1 - c).double()  # sessions since, to the end
        return pairs

    def score(self, batch: SessionBatch, candidates: Tensor | None = None) -> Tensor:
        pairs = self._pairs(batch)
        sim = self.similarity(pairs)
        positive = sim > 0
        pairs = {name: value[positive] for name, value in pairs.items()}
        sim = sim[positive]
        # the k most similar per session; ties (equal to 12 decimals, so that sums in
        # another order tie too): the more recent (later) candidate first
        order = torch.argsort(pairs["candidate"], descending=True, stable=True)
        rounded = torch.round(sim * 1e12)
        order = order[torch.argsort(rounded[order], descending=True, stable=True)]
        order = order[torch.argsort(pairs["session"][order], stable=True)]
        session = pairs["session"][order]
        group_start = _ptr(torch.bincount(session, minlength=batch.num_sessions))[:-1]
        rank = torch.arange(order.numel(), device=session.device) - group_start[session]
        chosen = order[rank < self.k]
        pairs = {name: value[chosen] for name, value in pairs.items()}
        contribution = sim[chosen] * self.neighbour_weight(pairs)
        # every item of every neighbour
        c = pairs["candidate"]
        starts = self.session_ptr[c]
        counts = self.session_ptr[c + 1] - starts
        where = _positions(starts, counts)
        pair = torch.repeat_interleave(torch.arange(c.numel(), device=c.device), counts)
        expanded = {name: value[pair] for name, value in pairs.items()}
        item = self.session_items[where]
        value = contribution[pair] * self.item_weight(expanded, self.session_last[where], item)
        rows = pairs["session"][pair]
        scores = torch.zeros(batch.num_sessions, self.num_items + 1, dtype=torch.float64,
                             device=c.device)  # fmt: skip
        scores.index_put_((rows, item), value, accumulate=True)
        if not self.remind:
            owner = batch.click_session().to(c.device)
            scores[owner, batch.x[batch.alias].to(c.device)] = 0.0
        scores[:, 0] = -math.inf  # float64: sums of weights stay distinct
        return scores if candidates is None else scores.gather(1, candidates)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_items}, k={self.k}, sample_size={self.sample_size})"
        )


class VSKNN(SessionKNN):
    r"""V-SKNN (Ludewig & Jannach, UMUAI 2018): SKNN with the current session as a
    vector that weights recent clicks more, and neighbour scores decayed by how
    far back the item they share was clicked.

    .. math::
        w_c = \frac{p_c}{L}, \qquad
        \mathrm{sim}(s, n) = \frac{\sum_{c \in I_s \cap I_n} w_c}{|I_s|}, \qquad
        \hat{y}_i = \sum_{n \in N_k(s)} \frac{\mathrm{sim}(s, n)}{L - p^*_{s,n} + 1}
            \,(1 + \lambda_{idf}\, \mathrm{idf}_i)\, [i \in I_n]

    with :math:`p_c` the position of the last click on :math:`c` in the session
    of :math:`L` clicks and :math:`p^*_{s,n}` the last position of an item
    shared with :math:`n` (session-rec's ``VMContextKNN`` defaults:
    ``weighting="div"``, ``similarity="vec"``, ``weighting_score="div"``,
    ``remind=True``; ``idf_weighting`` is off by default there too).

    Args:
        num_items (int): the number of real items.
        k (int): neighbours. (default: ``100``)
        sample_size (int): recent candidates. (default: ``1000``)
        idf_weighting (float): :math:`\lambda_{idf}` (0: off). (default: ``0``)
    """

    def __init__(
        self, num_items: int, k: int = 100, sample_size: int = 1000, idf_weighting: float = 0.0
    ) -> None:
        super().__init__(num_items, k=k, sample_size=sample_size)
        self.idf_weighting = idf_weighting

    def prefix_weights(self, last_position: Tensor, length: Tensor) -> Tensor:
        return last_position.double() / length.double()

    def similarity(self, pairs: dict[str, Tensor]) -> Tensor:
        return pairs["shared_weight"] / pairs["distinct"]

    def neighbour_weight(self, pairs: dict[str, Tensor]) -> Tensor:
        return 1.0 / (pairs["length"] - pairs["last_in_session"] + 1)

    def item_weight(self, pairs: dict[str, Tensor], position: Tensor, item: Tensor) -> Tensor:
        if not self.idf_weighting:
            return torch.ones_like(position, dtype=torch.float64)
        return 1 + self.idf_weighting * _idf(self)[item]


class STAN(SessionKNN):
    r"""STAN (Garg et al., SIGIR 2019): sequence- and time-aware neighbourhood.

    .. math::
        w_c = e^{(p_c - L) / \lambda_{spw}}, \qquad
        \mathrm{sim}(s, n) = \frac{\sum_{c \in I_s \cap I_n} w_c}
            {\sqrt{\sum_{c \in I_s} w_c^2}\, \sqrt{|I_n|}}\,
            e^{-\Delta t_n / \lambda_{snh}}

    .. math::
        \hat{y}_i = \sum_{n \in N_k(s)} \mathrm{sim}(s, n)\,
            e^{-|q_{n,i} - q^*_{s,n}| / \lambda_{inh}}\, [i \in I_n]

    with :math:`q_{n,i}` the last position of :math:`i` in :math:`n` and
    :math:`q^*_{s,n}` the last position in :math:`n` of an item of the
    current session (session-rec's ``stan.py``; defaults its
    ``lambda_spw=1.02``, ``lambda_inh=2.05``, ``sample_size=5000``). See the
    module's note on time: :math:`\Delta t_n` and ``lambda_snh`` count
    training sessions.

    Args:
        num_items (int): the number of real items.
        k (int): neighbours. (default: ``100``)
        sample_size (int): recent candidates. (default: ``5000``)
        lambda_spw (float): position decay in the session. (default: ``1.02``)
        lambda_snh (float, optional): recency decay, in sessions (``None``:
            off). (default: ``None``)
        lambda_inh (float): position decay in the neighbour. (default: ``2.05``)
        remind (bool): also score the session's own items. (default: ``True``)
    """

    def __init__(
        self,
        num_items: int,
        k: int = 100,
        sample_size: int = 5000,
        lambda_spw: float = 1.02,
        lambda_snh: float | None = None,
        lambda_inh: float = 2.05,
        remind: bool = True,
    ) -> None:
        super().__init__(num_items, k=k, sample_size=sample_size)
        for name, value in (("lambda_spw", lambda_spw), ("lambda_inh", lambda_inh),
                            ("lambda_snh", lambda_snh)):  # fmt: skip
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        self.lambda_spw, self.lambda_snh, self.lambda_inh = lambda_spw, lambda_snh, lambda_inh
        self.remind = remind

    def prefix_weights(self, last_position: Tensor, length: Tensor) -> Tensor:
        return torch.exp((last_position - length).double() / self.lambda_spw)

    def similarity(self, pairs: dict[str, Tensor]) -> Tensor:
        sim = pairs["shared_weight"] / (pairs["weight_sq"].sqrt() * pairs["neighbour_size"].sqrt())
        if self.lambda_snh is not None:
            sim = sim * torch.exp(-pairs["age"] / self.lambda_snh)
        return sim

    def item_weight(self, pairs: dict[str, Tensor], position: Tensor, item: Tensor) -> Tensor:
        gap = (position - pairs["last_in_candidate"]).abs().double()
        return torch.exp(-gap / self.lambda_inh)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_items}, k={self.k}, sample_size={self.sample_size}, "
            f"lambda_spw={self.lambda_spw}, lambda_snh={self.lambda_snh}, "
            f"lambda_inh={self.lambda_inh})"
        )


class VSTAN(STAN):
    r"""VSTAN (Ludewig et al., UMUAI 2021): STAN with V-SKNN's neighbour decay and
    an IDF boost of rare items.

    .. math::
        \hat{y}_i = \sum_{n \in N_k(s)} \mathrm{sim}(s, n)\,
            e^{-|q_{n,i} - q^*_{s,n}| / \lambda_{inh}}\,
            (1 + \lambda_{idf}\, \mathrm{idf}_i)\,
            e^{(p^*_{s,n} - L) / \lambda_{ipw}}\, [i \in I_n]

    with :math:`\mathrm{idf}_i = \log(S / c_i)` (:math:`S` training sessions,
    :math:`c_i` clicks on :math:`i`) and :math:`p^*_{s,n}` the last position in
    the session of an item shared with :math:`n` (session-rec's ``vstan.py``;
    similarity and the other weights as :class:`STAN`).

    Args:
        num_items (int): the number of real items.
        k (int): neighbours. (default: ``100``)
        sample_size (int): recent candidates. (default: ``5000``)
        lambda_spw (float): (default: ``1.02``)
        lambda_snh (float, optional): in sessions. (default: ``None``)
        lambda_inh (float): (default: ``2.05``)
        lambda_ipw (float): decay of the neighbour's weight. (default: ``1.02``)
        lambda_idf (float): the IDF boost (0: off). (default: ``5``)
        remind (bool): (default: ``True``)
    """

    def __init__(
        self,
        num_items: int,
        k: int = 100,
        sample_size: int = 5000,
        lambda_spw: float = 1.02,
        lambda_snh: float | None = None,
        lambda_inh: float = 2.05,
        lambda_ipw: float = 1.02,
        lambda_idf: float = 5.0,
        remind: bool = True,
    ) -> None:
        super().__init__(num_items, k=k, sample_size=sample_size, lambda_spw=lambda_spw,
                         lambda_snh=lambda_snh, lambda_inh=lambda_inh, remind=remind)  # fmt: skip
        if not lambda_ipw > 0:
            raise ValueError(f"lambda_ipw must be > 0, got {lambda_ipw}")
        self.lambda_ipw, self.lambda_idf = lambda_ipw, lambda_idf

    def neighbour_weight(self, pairs: dict[str, Tensor]) -> Tensor:
        return torch.exp((pairs["last_in_session"] - pairs["length"]) / self.lambda_ipw)

    def item_weight(self, pairs: dict[str, Tensor], position: Tensor, item: Tensor) -> Tensor:
        weight = super().item_weight(pairs, position, item)
        return weight * (1 + self.lambda_idf * _idf(self)[item]) if self.lambda_idf else weight


def _idf(model: SessionKNN) -> Tensor:
    """``log(sessions / clicks)`` of every item (0 where never clicked), as
    session-rec's ``groupby(item).size()`` counts clicks."""
    clicks = model.item_clicks.double()
    return torch.where(clicks > 0, torch.log(model.num_sessions / clicks.clamp(min=1)), 0.0)


#: the methods by name, as tables and ``--baselines`` show them
KNN_METHODS: dict[str, type[SessionKNN]] = {
    "SKNN": SessionKNN,
    "V-SKNN": VSKNN,
    "STAN": STAN,
    "VSTAN": VSTAN,
}

#: the grid :func:`tune` searches, one argument at a time in this order (each
#: method's defaults first; ``lambda_snh`` in training sessions, as a share of them)
KNN_GRID: dict[str, tuple] = {
    "k": (50, 100, 500),
    "sample_size": (500, 1000, 5000),
    "lambda_spw": (0.5, 1.02, 2.5, 5.0),
    "lambda_inh": (0.5, 2.05, 5.0),
    "lambda_ipw": (0.5, 1.02, 2.5),
    "lambda_idf": (0.0, 1.0, 5.0),
    "lambda_snh": (None, 0.05, 0.25),
}


def tune(
    method: str,
    train: SessionDataset,
    valid: SessionDataset,
    metric: str = "HR@20",
    max_samples: int | None = 10_000,
    grid: dict[str, tuple] | None = None,
    seed: int = 0,
) -> tuple[SessionKNN, dict]:
    """A kNN method fitted on ``train``, its arguments chosen on ``valid``.

    Coordinate search over :data:`KNN_GRID` (the arguments the method takes,
    in that order, from its defaults): each argument in turn takes the grid
    value with the best validation ``metric``, the others held. Validation is
    scored on a fixed random subset of ``max_samples`` samples (``None``: all).

    Returns:
        The fitted model with the chosen arguments, and ``{"arguments": ...,
        "valid": {metric: value}, "evaluations": n}``.
    """
    import inspect

    from graphrec.evaluation import evaluate

    if method not in KNN_METHODS:
        raise ValueError(f"unknown kNN method {method!r}; choose one of {sorted(KNN_METHODS)}")
    cls = KNN_METHODS[method]
    if max_samples is not None and len(valid) > max_samples:
        gen = torch.Generator().manual_seed(seed)
        valid = valid[torch.randperm(len(valid), generator=gen)[:max_samples].sort().values]
    ks = (int(metric.split("@")[1]),) if "@" in metric else (20,)
    taken = inspect.signature(cls.__init__).parameters
    grid = {name: values for name, values in (grid or KNN_GRID).items() if name in taken}
    chosen: dict = {}
    cache: dict[tuple, float] = {}

    def value_of(arguments: dict) -> float:
        key = tuple(sorted(arguments.items(), key=lambda kv: kv[0]))
        if key not in cache:
            model = cls(train.num_items, **_concrete(arguments, train)).fit(train)
            cache[key] = evaluate(model, valid, ks=ks)[metric]
        return cache[key]

    for name, values in grid.items():
        best = max(values, key=lambda v: value_of({**chosen, name: v}))
        chosen[name] = best
    model = cls(train.num_items, **_concrete(chosen, train)).fit(train)
    return model, {"arguments": chosen, "valid": {metric: value_of(chosen)},
                   "evaluations": len(cache)}  # fmt: skip


def _concrete(arguments: dict, train: SessionDataset) -> dict:
    """``lambda_snh`` given as a share of the training sessions -> sessions."""
    out = dict(arguments)
    if out.get("lambda_snh") is not None:
        sessions = train.sessions[1].numel() - 1 if train.sessions is not None else len(train)
        out["lambda_snh"] = max(1.0, out["lambda_snh"] * sessions)
    return out
