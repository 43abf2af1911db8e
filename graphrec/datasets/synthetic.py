"""A synthetic click log with learnable structure: the embedded default dataset."""

from __future__ import annotations

import functools

import numpy as np
import torch

from graphrec.data.dataset import SessionDataset, prefix_samples
from graphrec.datasets.benchmark import SPLITS, select_sessions, session_rows, split_sessions


def generate_sessions(
    num_sessions: int = 6000,
    num_items: int = 1000,
    num_users: int = 400,
    num_categories: int = 20,
    seed: int = 0,
    mean_length: float = 5.0,
    max_length: int = 30,
    repeat_rate: float = 0.0,
    successor_share: float = 0.6,
    num_brands: int = 0,
    brand_share: float = 0.3,
) -> dict[str, np.ndarray]:
    """Generate a click log in time order.

    The generating process:

    * items have a category (uniform) and a long-tailed popularity
      (Zipf-like weights ``1 / rank^1.1``);
    * every item has 4 favoured successors in its own category (the
      category-coherent Markov structure SR-GNN and STAMP pick up);
    * users own several sessions spread over time and a lasting preference for
      2-3 categories (what DIN/DIEN, AttRec and SDM pick up);
    * a session starts in one of its user's categories; each next click
      follows a favoured successor (``successor_share``, 60% by default), a
      popular item of the current category or a jump to another of the user's
      categories (the rest, 5 : 3; 25% and 15% by default); lengths are
      ``2 + Poisson(mean_length - 2)``, at most ``max_length``;
    * with ``repeat_rate > 0``, each next click is first, with that
      probability, a repeat: an item drawn uniformly from the session's
      earlier clicks (repeat consumption, what S-POP exploits). The share of
      next clicks that repeat an earlier one is then at least ``repeat_rate``
      (the Markov process above also repeats now and then);
    * with ``num_brands > 0``, items also have a brand (uniform over
      ``1 .. num_brands``, independent of the category) and users a
      *segment*, a profile field: the brand the user prefers (uniform). Each
      next click that is not a repeat is then, with probability
      ``brand_share``, a popular item of the user's brand, any category (the
      planted side-field signal: a model that reads the items' brand and the
      user's segment can tell these clicks apart; one that reads ids only has to
      learn each user and item alone). Without brands no random number is
      drawn for them, so the log of a seed is the one without brands.

    Returns:
        A dict with ``items`` (concatenated clicks, ids ``1 .. num_items``),
        ``ptr`` (session boundaries), ``user`` per session (ids
        ``1 .. num_users``), and
        ``item_category`` (``[num_items + 1]``, categories ``1 .. num_categories``, 0 for padding)
        and ``successors`` (``[num_items + 1, 4]``, each item's favoured successors);
        with brands also ``item_brand`` (``[num_items + 1]``) and
        ``user_segment`` (``[num_users + 1]``), 0 for padding.
    """
    for name, v in (("num_sessions", num_sessions), ("num_items", num_items)):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if num_users < 1 or num_categories < 1:
        raise ValueError("num_users and num_categories must be >= 1")
    if num_items < 4 * num_categories:
        raise ValueError(f"num_items={num_items} is too small for {num_categories} categories")
    if mean_length < 2:
        raise ValueError(f"mean_length must be >= 2, got {mean_length}")
    if not 0 <= repeat_rate < 1:
        raise ValueError(f"repeat_rate must lie in [0, 1), got {repeat_rate}")
    if not 0 <= successor_share <= 1:
        raise ValueError(f"successor_share must lie in [0, 1], got {successor_share}")
    if num_brands < 0 or not 0 <= brand_share <= 1:
        raise ValueError("num_brands must be >= 0 and brand_share lie in [0, 1]")
    # the rest of the transitions: 5 : 3 between the category's popular items and jumps
    within_category = successor_share + (1 - successor_share) * 0.625
    rng = np.random.default_rng(seed)
    category = rng.integers(1, num_categories + 1, size=num_items + 1)  # 0 = padding
    category[0] = 0
    popularity = 1.0 / np.arange(1, num_items + 1) ** 1.1
    weight = np.zeros(num_items + 1)
    weight[1:] = popularity[rng.permutation(num_items)]
    members = {c: np.flatnonzero(category == c) for c in range(1, num_categories + 1)}
    member_p = {c: weight[m] / weight[m].sum() for c, m in members.items() if m.size}
    successors = np.zeros((num_items + 1, 4), dtype=np.int64)
    for c, p in member_p.items():
        successors[members[c]] = rng.choice(members[c], size=(members[c].size, 4), p=p)
    prefs = rng.dirichlet(np.full(num_categories, 0.3), size=num_users)
    cats_in_use = np.array(sorted(member_p))
    prefs = prefs[:, cats_in_use - 1]
    prefs /= prefs.sum(1, keepdims=True)
    user_cats = [rng.choice(cats_in_use, size=3, replace=cats_in_use.size < 3, p=p) for p in prefs]

    brand = segment = None
    if num_brands:
        brand = np.zeros(num_items + 1, dtype=np.int64)
        brand[1:] = rng.integers(1, num_brands + 1, size=num_items)
        segment = np.zeros(num_users + 1, dtype=np.int64)
        segment[1:] = rng.integers(1, num_brands + 1, size=num_users)
        by_brand = {b: np.flatnonzero(brand == b) for b in range(1, num_brands + 1)}
        brand_p = {b: weight[m] / weight[m].sum() for b, m in by_brand.items() if m.size}
    users = rng.integers(1, num_users + 1, size=num_sessions)  # 0 = unknown user
    lengths = np.minimum(2 + rng.poisson(mean_length - 2, size=num_sessions), max_length)
    out = np.empty(int(lengths.sum()), dtype=np.int64)
    pos = 0
    for s in range(num_sessions):
        cats = user_cats[users[s] - 1]
        c = cats[0] if rng.random() < 0.6 else cats[rng.integers(1, 3)]
        item = rng.choice(members[c], p=member_p[c])
        out[pos] = item
        for t in range(1, lengths[s]):
            # no extra draw at repeat_rate 0: the log of a seed stays the same
            if repeat_rate and rng.random() < repeat_rate:
                item = out[pos + rng.integers(0, t)]
                out[pos + t] = item
                continue
            if num_brands and rng.random() < brand_share and segment[users[s]] in brand_p:
                b = segment[users[s]]
                item = rng.choice(by_brand[b], p=brand_p[b])
                out[pos + t] = item
                continue
            r = rng.random()
            if r < successor_share:
                item = successors[item, rng.integers(0, 4)]
            elif r < within_category:
                c = category[item]
                item = rng.choice(members[c], p=member_p[c])
            else:
                c = cats[rng.integers(0, 3)]
                item = rng.choice(members[c], p=member_p[c])
            out[pos + t] = item
        pos += lengths[s]
    log = {
        "items": out,
        "ptr": np.concatenate([[0], np.cumsum(lengths)]),
        "user": users,
        "item_category": category,
        "successors": successors,
    }
    if num_brands:
        log.update(item_brand=brand, user_segment=segment)
    return log


@functools.lru_cache(maxsize=4)
def _generate_cached(
    num_sessions: int,
    num_items: int,
    num_users: int,
    num_categories: int,
    seed: int,
    repeat_rate: float,
    mean_length: float,
    successor_share: float,
    num_brands: int = 0,
    brand_share: float = 0.3,
) -> dict[str, np.ndarray]:
    """The three splits of one log are cut from a single generation."""
    return generate_sessions(
        num_sessions, num_items, num_users, num_categories, seed, repeat_rate=repeat_rate,
        mean_length=mean_length, successor_share=successor_share, num_brands=num_brands,
        brand_share=brand_share,
    )  # fmt: skip


def synthetic(
    num_sessions: int = 6000,
    num_items: int = 1000,
    num_users: int = 400,
    num_categories: int = 20,
    seed: int = 0,
    split: str = "train",
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    weighting: str = "binary",
    max_length: int | None = None,
    history_length: int = 0,
    repeat_rate: float = 0.0,
    mean_length: float = 5.0,
    successor_share: float = 0.6,
    num_brands: int = 0,
    brand_share: float = 0.3,
) -> SessionDataset:
    """The embedded synthetic dataset, split like the benchmarks.

    Sessions are generated in time order by :func:`generate_sessions`
    (deterministic for a ``seed``). The last ``test_fraction`` of them form the
    test split; of the rest, the last ``valid_fraction`` the validation split.
    Samples are prefix-augmented like the benchmarks and carry ``user`` and
    per-node ``category`` (categories are numbered from 1; 0 = padding).
    Users own many sessions spread over the log, so with ``history_length``
    every sample also carries its user's earlier clicks (the long-term
    history read by SDM), whatever split those earlier sessions fell in:
    they precede the sample in time.

    Args:
        num_sessions (int): sessions in the log. (default: ``6000``)
        num_items (int): catalogue size. (default: ``1000``)
        num_users (int): users. (default: ``400``)
        num_categories (int): item categories. (default: ``20``)
        seed (int): random seed. (default: ``0``)
        split (str): ``"train"``, ``"valid"`` or ``"test"``. (default: ``"train"``)
        valid_fraction (float): share of the non-test sessions used for
            validation. (default: ``0.1``)
        test_fraction (float): share of all sessions used for test. (default: ``0.1``)
        weighting (str): edge weighting. (default: ``"binary"``)
        max_length (int, optional): keep the most recent clicks of each input.
        history_length (int): attach up to this many earlier clicks of the
            user as the long-term history (0: none). (default: ``0``)
        repeat_rate (float): probability that a next click repeats an earlier
            click of its session (see :func:`generate_sessions`). (default: ``0``)
        mean_length (float): mean clicks per session (at least 2). (default: ``5``)
        successor_share (float): the probability that a next click follows
            one of the item's favoured successors: how predictable a new click
            is (the other steps land on a successor by chance too, a popular
            item of the category often being one). (default: ``0.6``)
        num_brands (int): plant a side-field signal (see
            :func:`generate_sessions`): the dataset then has the item field
            ``brand`` (``item_features``) and the user field ``segment``
            (``user_features``, the brand the user prefers). (default: ``0``)
        brand_share (float): with brands, the share of next clicks drawn from
            the user's brand. (default: ``0.3``)

    The regime of long, repeat-heavy real sessions, where S-POP beats SR-GNN,
    is ``mean_length=15, successor_share=0.1, repeat_rate=0.4``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    log = _generate_cached(num_sessions, num_items, num_users, num_categories, seed, repeat_rate,
                           float(mean_length), float(successor_share), int(num_brands),
                           float(brand_share))  # fmt: skip
    fields = {}
    if num_brands:
        fields["item_features"] = {"brand": torch.tensor(log["item_brand"])}
        fields["user_features"] = {"segment": torch.tensor(log["user_segment"])}
    # copies: the cached arrays are shared between splits and must stay intact
    items, ptr = torch.tensor(log["items"]), torch.tensor(log["ptr"])
    users = torch.tensor(log["user"])
    num_test = int(num_sessions * test_fraction)
    if split == "test":
        index = torch.arange(num_sessions - num_test, num_sessions)
    else:
        train_idx, valid_idx = split_sessions(num_sessions - num_test, valid_fraction)
        index = train_idx if split == "train" else valid_idx
    in_split = torch.zeros(num_sessions, dtype=torch.bool)
    in_split[index] = True
    prefix_length, sample_session = prefix_samples(ptr)
    keep = in_split[sample_session]
    return SessionDataset.from_prefixes(
        items,
        ptr,
        sample_session[keep],
        prefix_length[keep],
        num_items,
        weighting=weighting,
        max_length=max_length,
        session_user=users,
        history_length=history_length,
        sessions=select_sessions(items, ptr, index),
        session_index=session_rows(index, num_sessions),
        item_category=torch.tensor(log["item_category"]),
        num_users=num_users,
        name=_name(repeat_rate, mean_length, successor_share, num_brands) + f"/{split}",
        **fields,
    )


def _name(repeat_rate: float, mean_length: float, successor_share: float, num_brands: int) -> str:
    """``synthetic``, with the generator's settings that differ from the defaults."""
    name = "synthetic"
    if repeat_rate:
        name += f"-r{repeat_rate:g}"
    if mean_length != 5.0:
        name += f"-len{mean_length:g}"
    if successor_share != 0.6:
        name += f"-succ{successor_share:g}"
    if num_brands:
        name += f"-b{num_brands}"
    return name


DEMO_SIZE = {"num_sessions": 50000, "num_items": 3000, "num_users": 2500, "num_categories": 50}
