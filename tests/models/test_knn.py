"""SKNN, V-SKNN, STAN and VSTAN equal line-by-line re-implementations of
session-rec's loops (knn/sknn.py, vsknn.py, stan.py, vstan.py) on small logs."""

import math

import pytest
import torch

from graphrec.data import collate, session_graph
from graphrec.models.knn import STAN, VSKNN, VSTAN, SessionKNN


def random_log(seed, sessions=60, items=25, longest=9):
    gen = torch.Generator().manual_seed(seed)
    log = []
    for _ in range(sessions):
        n = int(torch.randint(2, longest + 1, (1,), generator=gen))
        log.append(torch.randint(1, items + 1, (n,), generator=gen).tolist())
    return log


def flat(log):
    items = torch.tensor([i for s in log for i in s])
    ptr = torch.tensor([0, *torch.tensor([len(s) for s in log]).cumsum(0).tolist()])
    return items, ptr


class Reference:
    """session-rec's neighbourhood search, written out as its loops: dicts and sets,
    one session and one neighbour at a time. Time is the session's index; equal
    similarities put the more recent session first."""

    def __init__(self, log, k, sample_size):
        self.log, self.k, self.sample_size = log, k, sample_size
        self.item_sessions = {}
        for t, s in enumerate(log):
            for i in s:
                self.item_sessions.setdefault(i, set()).add(t)
        clicks = {}
        for s in log:
            for i in s:
                clicks[i] = clicks.get(i, 0) + 1
        self.idf = {i: math.log(len(log) / c) for i, c in clicks.items()}

    def neighbours(self, session):
        relevant = set()
        for i in session:
            relevant |= self.item_sessions.get(i, set())
        sample = sorted(relevant, reverse=True)[: self.sample_size]  # most recent
        sims = [(t, self.similarity(session, t)) for t in sample]
        sims = [(t, x) for t, x in sims if x > 0]
        sims.sort(key=lambda pair: (round(pair[1] * 1e12), pair[0]), reverse=True)
        return sims[: self.k]

    def scores(self, session):
        out = {}
        for t, sim in self.neighbours(session):
            for item, value in self.contributions(session, t, sim):
                out[item] = out.get(item, 0.0) + value
        return out


class SKNNRef(Reference):
    def similarity(self, session, t):
        a, b = set(session), set(self.log[t])
        return len(a & b) / len(a | b)

    def contributions(self, session, t, sim):
        return [(i, sim) for i in set(self.log[t])]


class VSKNNRef(Reference):
    def __init__(self, log, k, sample_size, idf_weighting=0.0):
        super().__init__(log, k, sample_size)
        self.idf_weighting = idf_weighting

    def similarity(self, session, t):
        pos_map, length, count = {}, len(session), 1
        for item in session:  # "div": the last click of an item sets its weight
            pos_map[item] = count / length
            count += 1
        inter = set(session) & set(self.log[t])
        return sum(pos_map[i] for i in inter) / len(pos_map)

    def contributions(self, session, t, sim):
        items, step = set(self.log[t]), 1
        for item in reversed(session):
            if item in items:
                decay = 1 / step
                break
            step += 1
        out = []
        for i in items:
            value = sim + sim * self.idf[i] * self.idf_weighting
            out.append((i, value * decay))
        return out


class STANRef(Reference):
    def __init__(self, log, k, sample_size, spw=1.02, snh=None, inh=2.05, remind=True):
        super().__init__(log, k, sample_size)
        self.spw, self.snh, self.inh, self.remind = spw, snh, inh, remind

    def similarity(self, session, t):
        pos_map, length = {}, len(session)
        for pos, item in enumerate(session, start=1):
            pos_map[item] = math.exp((pos - length) / self.spw)
        current, neighbour = set(session), set(self.log[t])
        inter = current & neighbour
        vp = sum(pos_map[i] for i in inter)
        cs = sum(pos_map[i] ** 2 for i in current)
        sim = vp / (math.sqrt(cs) * math.sqrt(len(neighbour)))
        if self.snh is not None:  # "now" = after the last training session
            sim *= math.exp(-(len(self.log) - 1 - t) / self.snh)
        return sim

    def contributions(self, session, t, sim):
        n_items, s_items = self.log[t], set(session)
        pos_last, pos_i_star = {}, None
        for i in range(len(n_items)):
            if n_items[i] in s_items:
                pos_i_star = i + 1
            pos_last[n_items[i]] = i + 1
        out = []
        for item in set(n_items):
            if not self.remind and item in s_items:
                continue
            out.append((item, sim * math.exp(-abs(pos_last[item] - pos_i_star) / self.inh)))
        return out


class VSTANRef(STANRef):
    def __init__(self, log, k, sample_size, ipw=1.02, idf=5.0, **kwargs):
        super().__init__(log, k, sample_size, **kwargs)
        self.ipw, self.lambda_idf = ipw, idf

    def contributions(self, session, t, sim):
        n_items = set(self.log[t])
        for i in range(len(session)):
            if session[i] in n_items:
                ipw = math.exp((i + 1 - len(session)) / self.ipw)
        out = []
        for item, value in super().contributions(session, t, sim):
            value = value + value * self.idf[item] * self.lambda_idf
            out.append((item, value * ipw))
        return out


CASES = [
    (SessionKNN, {}, SKNNRef, {}),
    (VSKNN, {}, VSKNNRef, {}),
    (VSKNN, {"idf_weighting": 0.5}, VSKNNRef, {"idf_weighting": 0.5}),
    (STAN, {}, STANRef, {}),
    (STAN, {"lambda_snh": 15.0, "lambda_spw": 3.0, "lambda_inh": 0.7, "remind": False},
     STANRef, {"snh": 15.0, "spw": 3.0, "inh": 0.7, "remind": False}),
    (VSTAN, {}, VSTANRef, {}),
    (VSTAN, {"lambda_snh": 20.0, "lambda_ipw": 2.5, "lambda_idf": 1.0},
     VSTANRef, {"snh": 20.0, "ipw": 2.5, "idf": 1.0}),
]  # fmt: skip


@pytest.mark.parametrize("cls, kwargs, ref_cls, ref_kwargs", CASES)
@pytest.mark.parametrize("k, sample_size", [(100, 1000), (4, 10), (1, 3)])
def test_equals_the_session_rec_loops(cls, kwargs, ref_cls, ref_kwargs, k, sample_size):
    log = random_log(0)
    model = cls(25, k=k, sample_size=sample_size, **kwargs).fit(flat(log))
    reference = ref_cls(log, k, sample_size, **ref_kwargs)
    queries = [*random_log(1, sessions=30), [24, 25, 25, 3], [7]]  # repeats, one click
    scores = model.score(collate([session_graph(q) for q in queries]))
    assert scores.dtype == torch.float64 and torch.isinf(scores[:, 0]).all()
    for row, query in enumerate(queries):
        expected = torch.zeros(26, dtype=torch.float64)
        for item, value in reference.scores(query).items():
            expected[item] = value
        assert torch.allclose(scores[row, 1:], expected[1:], rtol=1e-12, atol=1e-15), query


def test_ties_put_the_more_recent_neighbour_first():
    # three identical sessions: with k=1 only the last one counts
    log = [[1, 2], [1, 3], [1, 4]]
    model = SessionKNN(4, k=1).fit(flat(log))
    scores = model.score(collate([session_graph([1])]))[0]
    assert scores[4] > 0 and scores[2] == 0 and scores[3] == 0


def test_sample_is_the_most_recent_candidates():
    log = [[1, 2], [1, 3], [1, 4], [5, 6]]
    model = SessionKNN(6, sample_size=2).fit(flat(log))
    scores = model.score(collate([session_graph([1])]))[0]
    assert scores[2] == 0 and scores[3] > 0 and scores[4] > 0 and scores[6] == 0


def test_unseen_items_and_errors():
    model = SessionKNN(10).fit(flat([[1, 2], [2, 3]]))
    scores = model.score(collate([session_graph([9])]))  # no training session holds item 9
    assert (scores[0, 1:] == 0).all()
    with pytest.raises(ValueError, match="call fit"):
        SessionKNN(5).score(collate([session_graph([1])]))
    with pytest.raises(TypeError, match="is fitted"):
        model.loss(collate([session_graph([1], target=2)]))
    with pytest.raises(ValueError, match="lambda_spw must be > 0"):
        STAN(5, lambda_spw=0.0)


def test_batch_invariance():
    log = random_log(3)
    model = VSTAN(25, k=5, sample_size=20, lambda_snh=10.0).fit(flat(log))
    queries = random_log(4, sessions=12)
    together = model.score(collate([session_graph(q) for q in queries]))
    alone = torch.cat([model.score(collate([session_graph(q)])) for q in queries])
    assert torch.equal(together, alone)


def test_tune_picks_the_best_validation_value_per_argument(monkeypatch):
    """Coordinate search: each argument takes the grid value that scores best on
    validation, the others held; every combination is scored once."""
    import graphrec.models.knn as knn
    from graphrec.datasets import synthetic

    train = synthetic(num_sessions=300, num_items=60, num_categories=4)
    valid = synthetic(num_sessions=300, num_items=60, num_categories=4, split="valid")
    seen = []

    def fake_evaluate(model, data, ks):
        seen.append((model.k, model.sample_size))
        # best: k=5 whatever the sample; then sample_size=50
        return {"HR@20": -abs(model.k - 5) - abs(model.sample_size - 50) / 100}

    import graphrec.evaluation

    monkeypatch.setattr(graphrec.evaluation, "evaluate", fake_evaluate)
    model, info = knn.tune("SKNN", train, valid, grid={"k": (1, 5, 20), "sample_size": (10, 50)})
    assert info["arguments"] == {"k": 5, "sample_size": 50}
    assert (model.k, model.sample_size) == (5, 50)
    # k over its grid (sample_size at its default 1000), then sample_size with k=5;
    # nothing scored twice, the final value read back
    assert seen == [(1, 1000), (5, 1000), (20, 1000), (5, 10), (5, 50)]
    assert info["evaluations"] == 5 and info["valid"] == {"HR@20": 0.0}
    with pytest.raises(ValueError, match="unknown kNN method"):
        knn.tune("GRU4Rec", train, valid)
