import numpy as np
import pytest
import torch

from graphrec.datasets import generate_sessions, synthetic


def test_deterministic_and_sized():
    a = generate_sessions(num_sessions=300, num_items=200, num_users=50, num_categories=5, seed=3)
    b = generate_sessions(num_sessions=300, num_items=200, num_users=50, num_categories=5, seed=3)
    c = generate_sessions(num_sessions=300, num_items=200, num_users=50, num_categories=5, seed=4)
    assert all((a[k] == b[k]).all() for k in a)
    assert not (a["items"][:50] == c["items"][:50]).all()
    assert len(a["ptr"]) == 301 and a["items"].min() >= 1 and a["items"].max() <= 200
    assert (a["ptr"][1:] - a["ptr"][:-1]).min() >= 2
    assert a["item_category"][0] == 0 and set(a["item_category"][1:]) <= set(range(1, 6))


def test_structure_is_learnable():
    log = generate_sessions(num_sessions=2000, num_items=300, num_categories=10, seed=0)
    items, ptr, cat = log["items"], log["ptr"], log["item_category"]
    starts = set(ptr[:-1].tolist())
    pairs = [(items[t], items[t + 1]) for t in range(len(items) - 1) if t + 1 not in starts]
    same_cat = sum(cat[u] == cat[v] for u, v in pairs) / len(pairs)
    assert same_cat > 0.8  # random pairs would share a category 10% of the time
    counts = torch.bincount(torch.from_numpy(items), minlength=301)[1:].sort(descending=True)
    assert counts.values[:30].sum() > 0.3 * counts.values.sum()  # long tail


def test_splits_carry_side_information():
    train = synthetic(num_sessions=500, num_items=200, num_users=40, num_categories=5)
    valid = synthetic(
        num_sessions=500, num_items=200, num_users=40, num_categories=5, split="valid"
    )
    test = synthetic(num_sessions=500, num_items=200, num_users=40, num_categories=5, split="test")
    assert train.sessions[1].numel() - 1 == 405  # (500 - 50 test) * 0.9
    assert valid.sessions[1].numel() - 1 == 45 and test.sessions[1].numel() - 1 == 50
    batch = train.batch([0, 1, 2])
    assert batch.user.shape == (3,) and batch.category.shape == batch.x.shape
    assert torch.equal(batch.category, train.item_category[batch.x])
    assert train.num_items == 200


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_sessions"):
        generate_sessions(num_sessions=0)
    with pytest.raises(ValueError, match="split must be one of"):
        synthetic(split="all")


def test_repeat_rate_controls_repeated_next_clicks():
    from graphrec.datasets.synthetic import generate_sessions

    def share(log):
        items, ptr = log["items"], log["ptr"]
        repeats = total = 0
        for s in range(len(ptr) - 1):
            sess = items[ptr[s] : ptr[s + 1]].tolist()
            for t in range(1, len(sess)):
                repeats += sess[t] in sess[:t]
                total += 1
        return repeats / total

    base = generate_sessions(num_sessions=3000, seed=1)
    assert (
        generate_sessions(num_sessions=3000, seed=1, repeat_rate=0.0)["items"] == base["items"]
    ).all()
    low = share(base)
    high = share(generate_sessions(num_sessions=3000, seed=1, repeat_rate=0.5))
    # a repeat with probability 0.5, plus the process's own repeats among the rest
    assert abs(high - (0.5 + 0.5 * low)) < 0.03
    with pytest.raises(ValueError, match="repeat_rate"):
        generate_sessions(repeat_rate=1.0)


def test_default_log_is_unchanged_by_the_new_knobs():
    """The default log is the one the previous release generated (its first
    clicks and the sum of its ids, recorded from that code)."""
    log = generate_sessions(num_sessions=500, num_items=200, num_users=40, num_categories=5)
    assert log["items"][:12].tolist() == [89, 162, 162, 12, 86, 151, 81, 162, 12, 162, 39, 58]
    assert int(log["items"].sum()) == 233019


def test_successor_share_and_mean_length():
    def successor_share(log):
        items, ptr = log["items"], log["ptr"]
        starts = set(ptr[:-1].tolist())
        follows = [log["successors"][items[t]].tolist().count(items[t + 1]) > 0
                   for t in range(len(items) - 1) if t + 1 not in starts]  # fmt: skip
        return sum(follows) / len(follows)

    kw = dict(num_sessions=2000, num_items=1000, num_categories=20, seed=0)
    # the other steps land on a successor by chance too (a popular item of the
    # category often is one): the share is s + (1 - s) * chance
    chance = successor_share(generate_sessions(**kw, successor_share=0.0))
    for share in (0.1, 0.6, 0.9):
        measured = successor_share(generate_sessions(**kw, successor_share=share))
        assert abs(measured - (share + (1 - share) * chance)) < 0.03, (share, measured)
    long = generate_sessions(**kw, mean_length=15.0)
    lengths = long["ptr"][1:] - long["ptr"][:-1]
    assert abs(lengths.mean() - 15) < 0.3
    data = synthetic(num_sessions=300, num_items=200, num_categories=5, mean_length=15.0,
                     successor_share=0.1, repeat_rate=0.4)  # fmt: skip
    assert data.name == "synthetic-r0.4-len15-succ0.1/train"
    with pytest.raises(ValueError, match="successor_share"):
        generate_sessions(successor_share=1.5)


def test_planted_brand_signal():
    kw = dict(num_sessions=3000, num_items=500, num_users=100, num_categories=10, seed=1)
    plain = generate_sessions(**kw)
    assert "item_brand" not in plain
    log = generate_sessions(**kw, num_brands=10, brand_share=0.5)
    brand, segment = log["item_brand"], log["user_segment"]
    assert brand[0] == 0 and segment[0] == 0 and set(brand[1:]) <= set(range(1, 11))
    # the share of next clicks in the session user's brand: brand_share plus chance
    items, ptr, user = log["items"], log["ptr"], log["user"]
    session = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    later = np.ones(len(items), dtype=bool)
    later[ptr[:-1]] = False  # first clicks are never drawn from the brand
    own = brand[items[later]] == segment[user[session[later]]]
    base = generate_sessions(**kw, num_brands=10, brand_share=0.0)
    chance = (base["item_brand"][base["items"]] == base["user_segment"][base["user"][
        np.repeat(np.arange(len(base["ptr"]) - 1), np.diff(base["ptr"]))]]).mean()  # fmt: skip
    assert abs(own.mean() - (0.5 + 0.5 * chance)) < 0.03, (own.mean(), chance)
    data = synthetic(**kw, num_brands=10, split="valid")
    assert data.name == "synthetic-b10/valid"
    assert torch.equal(data.item_features["brand"].view(-1), torch.tensor(brand))
    assert torch.equal(data.user_features["segment"].view(-1), torch.tensor(segment))
    assert synthetic(**kw).item_features == {}
