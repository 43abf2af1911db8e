import math

import pytest
import torch

from graphrec.evaluation import (
    Evaluator,
    MultiTargetEvaluator,
    SessionRecEvaluator,
    format_table,
    rank_of_target,
    relevant_positions,
    top_k,
)

NEG = float("-inf")


def test_hand_computed():
    # items 1..4; column 0 is padding (-inf)
    scores = torch.tensor(
        [
            [NEG, 0.9, 0.1, 0.5, 0.3],  # target 1 -> rank 1
            [NEG, 0.9, 0.1, 0.5, 0.3],  # target 4 -> rank 3
            [NEG, 0.2, 0.8, 0.7, 0.1],  # target 1 -> rank 3
            [NEG, 0.2, 0.8, 0.7, 0.1],  # target 4 -> rank 4
        ]
    )
    target = torch.tensor([1, 4, 1, 4])
    assert rank_of_target(scores, target).tolist() == [1, 3, 3, 4]
    ev = Evaluator(ks=(1, 3), num_items=4)
    ev.update(scores, target)
    out = ev.compute()
    assert out["HR@1"] == pytest.approx(1 / 4)
    assert out["HR@3"] == pytest.approx(3 / 4)
    assert out["MRR@3"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 4)
    assert out["NDCG@3"] == pytest.approx((1 + 2 / math.log2(4)) / 4)
    # top-1 lists: {1, 2}; top-3: {1, 3, 4} and {2, 3, 1}
    assert out["Coverage@1"] == pytest.approx(2 / 4)
    assert out["Coverage@3"] == pytest.approx(4 / 4)


def test_ties_count_against_the_target():
    scores = torch.tensor([[NEG, 0.5, 0.5, 0.5, 0.9]])
    assert rank_of_target(scores, torch.tensor([3])).tolist() == [4]
    ev = Evaluator(ks=(1, 3, 4), metrics=("hr",))
    ev.update(scores, torch.tensor([3]))
    assert ev.compute() == {"HR@1": 0.0, "HR@3": 0.0, "HR@4": 1.0}


def test_a_target_scored_minus_inf_is_never_ranked():
    """Outside a two-stage pipeline's candidates: a miss, even among -inf ties."""
    scores = torch.tensor([[NEG, 0.5, NEG, NEG], [NEG, NEG, NEG, NEG]])
    target = torch.tensor([2, 1])
    assert rank_of_target(scores, target).tolist() == [math.inf, math.inf]
    ev = Evaluator(ks=(1, 3), metrics=("hr",))
    ev.update(scores, target)
    assert ev.compute() == {"HR@1": 0.0, "HR@3": 0.0}
    ev = Evaluator(ks=(1, 3), metrics=("hr",))
    cand = torch.tensor([[2, 3, 1], [1, 2, 3]])
    ev.update_candidates(scores.gather(1, cand), cand, target)
    assert ev.compute() == {"HR@1": 0.0, "HR@3": 0.0}


def naive(scores, target, ks):
    out = {}
    for k in ks:
        hr = mrr = ndcg = 0.0
        for row, t in zip(scores.tolist(), target.tolist(), strict=True):
            rank = sum(1 for v in row if v >= row[t])  # ties count against the target
            if rank <= k:
                hr += 1
                mrr += 1 / rank
                ndcg += 1 / math.log2(rank + 1)
        n = len(target)
        out.update({f"HR@{k}": hr / n, f"MRR@{k}": mrr / n, f"NDCG@{k}": ndcg / n})
    return out


def test_agrees_with_naive_loop_over_batches():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(300, 51, generator=gen)
    scores[:, 0] = NEG
    scores[:40, 7] = scores[:40, 3]  # some exact ties
    target = torch.randint(1, 51, (300,), generator=gen)
    target[:40] = 3
    ev = Evaluator(ks=(1, 5, 10, 20))
    for start in range(0, 300, 64):  # several updates accumulate
        ev.update(scores[start : start + 64], target[start : start + 64])
    expected = naive(scores, target, (1, 5, 10, 20))
    got = ev.compute()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_topk_ranks_equal_full_ranks():
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(500, 101, generator=gen).round(decimals=1)  # many ties
    scores[:, 0] = NEG
    target = torch.randint(1, 101, (500,), generator=gen)
    full = rank_of_target(scores, target).double()
    ev_full, ev_top = Evaluator(ks=(5, 20)), Evaluator(ks=(5, 20))
    ev_full.update_ranks(full)
    ev_top.update(scores, target)
    assert ev_full.compute() == pytest.approx(ev_top.compute())


def test_update_topk_and_candidates():
    ev = Evaluator(ks=(2,), metrics=("hr", "mrr"))
    ev.update_topk(torch.tensor([[3, 1], [2, 4]]), torch.tensor([1, 5]))
    assert ev.compute() == {"HR@2": 0.5, "MRR@2": 0.25}
    ev = Evaluator(ks=(1, 2), metrics=("hr",))
    cand = torch.tensor([[5, 6, 7], [5, 6, 7]])
    cand_scores = torch.tensor([[0.1, 0.9, 0.5], [0.1, 0.9, 0.5]])
    ev.update_candidates(cand_scores, cand, torch.tensor([7, 8]))  # 8 is not a candidate
    assert ev.compute() == {"HR@1": 0.0, "HR@2": 0.5}


def test_errors():
    with pytest.raises(ValueError, match="no samples"):
        Evaluator().compute()
    with pytest.raises(ValueError, match="unknown metric"):
        Evaluator(metrics=("precision",))
    with pytest.raises(ValueError, match="need 20"):
        Evaluator().update_topk(torch.ones(2, 5, dtype=torch.long), torch.ones(2, dtype=torch.long))


def test_multi_target_hand_computed():
    ev = MultiTargetEvaluator(ks=(2, 3))
    top = torch.tensor([[4, 1, 2], [7, 8, 9]])
    targets = torch.tensor([[1, 2, 0], [5, 0, 0]])  # padded with 0
    ev.update(top, targets)
    out = ev.compute()
    d = [1 / math.log2(i + 2) for i in range(3)]
    assert out["Recall@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert out["Recall@3"] == pytest.approx((2 / 2 + 0) / 2)
    assert out["HR@2"] == pytest.approx(0.5)
    assert out["NDCG@2"] == pytest.approx((d[1] / (d[0] + d[1])) / 2)
    assert out["NDCG@3"] == pytest.approx(((d[1] + d[2]) / (d[0] + d[1])) / 2)


def test_format_table():
    text = format_table({"a": {"HR@20": 0.5}, "bb": {"HR@20": 0.25, "MRR@20": 0.1}})
    lines = text.splitlines()
    assert "HR@20" in lines[0] and "MRR@20" in lines[0]
    assert lines[2].split() == ["a", "50.00", "-"]
    assert lines[3].split() == ["bb", "25.00", "10.00"]


def test_format_table_puts_sampled_metrics_apart():
    text = format_table({"A": {"HR@10": 0.5, "HR@10 (100 neg.)": 0.7}, "POP": {"HR@10": 0.1}})
    full, sampled = text.split("\n\n")
    assert "neg." not in full and "50.00" in full and "70.00" not in full
    assert sampled.startswith("ranked against 100 sampled negatives:")
    assert "70.00" in sampled and sampled.splitlines()[-1].split() == ["POP", "-"]
    # a ranker measured on sampled candidates only has no row in the full table
    text = format_table(
        {"DIN": {"AUC (100 neg.)": 0.8}, "POP": {"HR@10": 0.1, "AUC (100 neg.)": 0.7}}
    )
    full, sampled = text.split("\n\n")
    assert "DIN" not in full and "POP" in full and "DIN" in sampled
    only = format_table({"DIN": {"AUC (100 neg.)": 0.8}})
    assert only.startswith("ranked against 100") and "80.00" in only


# -- AUC / GAUC -------------------------------------------------------------------
def naive_auc(scores, labels):
    """Pairwise count: positive above negative 1, tie 1/2."""
    pos = [s for s, lab in zip(scores, labels, strict=True) if lab]
    neg = [s for s, lab in zip(scores, labels, strict=True) if not lab]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_auc_and_gauc_match_a_naive_pairwise_count():
    from graphrec.evaluation import AUCEvaluator

    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (12, 6), generator=gen).float()  # many ties
    scores[3, 2] = float("-inf")
    scores[3, 4] = float("-inf")
    labels = torch.zeros(12, 6, dtype=torch.bool)
    labels[:, 0] = True
    labels[5, 3] = True
    labels[7] = True  # a group of only positives: left out of GAUC
    groups = torch.tensor([0, 0, 1, 1, 1, 2, 2, 7, 3, 3, 3, 3])
    ev = AUCEvaluator(suffix=" (5 neg.)")
    ev.update(scores[:7], labels[:7], groups[:7])
    ev.update(scores[7:], labels[7:], groups[7:])
    out = ev.compute()
    flat_s, flat_l = scores.reshape(-1).tolist(), labels.reshape(-1).tolist()
    assert out["AUC (5 neg.)"] == pytest.approx(naive_auc(flat_s, flat_l))
    num = den = 0.0
    for g in groups.unique().tolist():
        rows = groups == g
        s, lab = scores[rows].reshape(-1).tolist(), labels[rows].reshape(-1).tolist()
        auc = naive_auc(s, lab)
        if auc is not None:
            num += len(s) * auc
            den += len(s)
    assert out["GAUC (5 neg.)"] == pytest.approx(num / den)


def test_auc_by_hand():
    from graphrec.evaluation import AUCEvaluator, grouped_auc

    ev = AUCEvaluator()
    # pos 3 vs negs 1, 3, 5: 1 + 0.5 + 0 = 1.5 of 3
    ev.update(
        torch.tensor([[3.0, 1.0, 3.0, 5.0]]), torch.tensor([[1, 0, 0, 0]]).bool(), torch.tensor([0])
    )
    assert ev.compute() == {"AUC": 0.5, "GAUC": 0.5}
    auc, weight = grouped_auc(torch.tensor([1.0, 2.0]), torch.tensor([True, True]), torch.zeros(2))
    assert math.isnan(float(auc[0])) and weight.tolist() == [2]
    with pytest.raises(ValueError, match="disagree"):
        ev.update(torch.zeros(2, 3), torch.zeros(2, 3).bool(), torch.zeros(3))


def pessimistic_list(row: list[float], relevant: set[int]) -> list[int]:
    """The whole ranking of one row: score descending, and among equal scores
    the non-relevant items first (padding, column 0, left out)."""
    items = [i for i in range(1, len(row)) if row[i] > NEG]
    return sorted(items, key=lambda i: (-row[i], i in relevant, i))


def test_relevant_positions_with_a_tie_group_across_the_cut():
    scores = torch.tensor([[NEG, 3.0, 1.0, 3.0, 2.0, 3.0, 3.0, 0.0]])
    # 3.0 is shared by items 1, 3, 5, 6: relevant 3 and 6 come after 1 and 5
    got = relevant_positions(scores, torch.tensor([[3, 6, 4]]), k=4)
    assert got.tolist() == [[3.0, 4.0, math.inf]]  # item 4 is 5th, past k
    assert relevant_positions(scores, torch.tensor([[3, 6, 4]])).tolist() == [[3.0, 4.0, 5.0]]
    assert relevant_positions(scores, torch.tensor([[6]]), k=2).tolist() == [[math.inf]]


def test_one_tie_rule_on_every_path():
    """Full scores, candidates and scored top-K lists give the same metrics on
    heavily tied integer scores, and equal a loop over the pessimistic ranking."""
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 6, (200, 41), generator=gen).double()
    scores[:, 0] = NEG
    target = torch.randint(1, 41, (200,), generator=gen)
    ks = (1, 5, 10)
    expected = naive(scores, target, ks)
    ranks = rank_of_target(scores, target)
    for rank, row, t in zip(ranks, scores.tolist(), target.tolist(), strict=True):
        assert rank == pessimistic_list(row, {t}).index(t) + 1
    full = Evaluator(ks)
    full.update(scores, target)
    cand = Evaluator(ks)
    items = torch.arange(1, 41).expand(200, 40)
    cand.update_candidates(scores[:, 1:], items, target)
    lists = Evaluator(ks)
    top_scores, top = scores.topk(40, dim=1)  # a list long enough to hold every tie
    lists.update_topk(top, target, top_scores)
    for ev in (full, cand, lists):
        got = ev.compute()
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-12), key


def session_rec_naive(scores: torch.Tensor, rest: list[list[int]], k: int) -> dict[str, float]:
    """session-rec's accuracy_multiple metrics, loop by loop, on the pessimistic list."""
    sums = dict.fromkeys(("HR", "MRR", "P", "R", "MAP", "NDCG"), 0.0)
    for row, next_items in zip(scores.tolist(), rest, strict=True):
        ranking = pessimistic_list(row, set(next_items))
        top = ranking[:k]
        first = pessimistic_list(row, {next_items[0]})[:k]
        if next_items[0] in first:
            sums["HR"] += 1
            sums["MRR"] += 1 / (first.index(next_items[0]) + 1)
        hits = len(set(next_items) & set(top))
        sums["P"] += hits / k
        sums["R"] += hits / len(next_items)
        last_recall = ap = 0.0
        for i in range(k):
            recall = len(set(next_items) & set(ranking[:i])) / len(next_items)
            precision = len(set(next_items) & set(ranking[:i])) / k
            ap += precision * (recall - last_recall)
            last_recall = recall
        sums["MAP"] += ap

        def dcg(result, relevant):
            return sum(
                (1 if i == 0 else 1 / math.log2(i + 1))
                for i in range(min(len(result), k))
                if result[i] in relevant
            )

        sums["NDCG"] += dcg(top, set(next_items)) / dcg(next_items[:k], set(next_items))
    return {f"{m}@{k}": v / len(rest) for m, v in sums.items()}


@pytest.mark.parametrize("tied", [False, True])
def test_session_rec_metrics_equal_its_definitions(tied):
    gen = torch.Generator().manual_seed(4)
    scores = torch.randn(60, 31, generator=gen)
    if tied:
        scores = (scores * 1.5).round()  # heavy ties
    scores[:, 0] = NEG
    lengths = torch.randint(1, 9, (60,), generator=gen).tolist()
    rest = [torch.randint(1, 31, (n,), generator=gen).tolist() for n in lengths]
    rest[0] = [5, 5, 5]  # repeats count in R@K's denominator and NDCG's ideal list
    padded = torch.zeros(60, max(lengths), dtype=torch.long)
    for i, r in enumerate(rest):
        padded[i, : len(r)] = torch.tensor(r)
    ev = SessionRecEvaluator(ks=(3, 10))
    ev.update(scores[:25], padded[:25])
    ev.update(scores[25:], padded[25:, : max(lengths[25:])])
    got = ev.compute()
    for k in (3, 10):
        for key, value in session_rec_naive(scores, rest, k).items():
            assert got[key] == pytest.approx(value, abs=1e-12), key


def test_multi_target_scores_follow_the_tie_rule():
    scores = torch.tensor([[NEG, 2.0, 2.0, 1.0, 2.0]])
    ev = MultiTargetEvaluator(ks=(2,))
    ev.update_scores(scores, torch.tensor([[1, 3]]))
    # ranking 2, 4, 1, 3: target 1 third, 3 fourth -> nothing in the top 2
    assert ev.compute()["Recall@2"] == 0.0
    ev = MultiTargetEvaluator(ks=(3,))
    ev.update_scores(scores, torch.tensor([[1, 3]]))
    assert ev.compute()["Recall@3"] == 0.5


def test_top_k_hand_checked():
    # 4 blocks of 4 columns (+ a partial one): the best values sit in blocks 3, 0 and the tail
    scores = torch.tensor([[9.0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 8, 7, 0, 0, 6, 5]])
    values, columns = top_k(scores, 4, block=1)  # 18 blocks of one column
    assert values.tolist() == [[9.0, 8.0, 7.0, 6.0]] and columns.tolist() == [[0, 12, 13, 16]]
    values, columns = top_k(scores.repeat(1, 8), 1, block=4)
    assert values.tolist() == [[9.0]] and scores.repeat(1, 8)[0, columns[0, 0]] == 9.0


@pytest.mark.parametrize("num", [1280, 1281, 43098])
def test_top_k_equals_topk(num):
    gen = torch.Generator().manual_seed(num)
    for ties in (False, True):
        scores = torch.randn(50, num, generator=gen)
        if ties:  # a few distinct values: ties everywhere, including at the k-th value
            scores = (scores * 2).round()
        scores[:, 0] = -math.inf
        values, columns = top_k(scores, 20)
        assert torch.equal(values, scores.topk(20, dim=1).values)
        assert torch.equal(scores.gather(1, columns), values)
        assert bool((columns.sort(dim=1).values.diff(dim=1) > 0).all())  # distinct columns
