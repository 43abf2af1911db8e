import pytest
import torch

from graphrec import SRGNN
from graphrec.data import collate, session_graph


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = SRGNN(5, hidden_channels=8)
    m.set_item_ids(torch.tensor([0, 11, 22, 33, 44, 55]))
    return m


def test_recommend_returns_original_ids(model):
    top = model.recommend([[22, 33], [55]], k=5)
    assert top.shape == (2, 5)
    assert sorted(top[0].tolist()) == [11, 22, 33, 44, 55]
    scores = model.score(collate([session_graph([2, 3]), session_graph([5])]))
    expected = model.item_ids[scores.topk(5, dim=1).indices]
    assert torch.equal(top, expected)


def test_recommend_exclude_seen(model):
    top, scores = model.recommend([[22, 33, 22]], k=3, exclude_seen=True, return_scores=True)
    assert set(top[0].tolist()) == {11, 44, 55}
    assert (scores[0, :-1] >= scores[0, 1:]).all()


def test_recommend_never_returns_padding_or_seen_items(model):
    with pytest.warns(UserWarning, match="k=5 capped at 3"):
        top, scores = model.recommend([[22, 33], [55]], k=5, exclude_seen=True, return_scores=True)
    assert top.shape == (2, 3) and torch.isfinite(scores).all()
    assert not {0, 22, 33} & set(top[0].tolist()) and 55 not in top[1].tolist()
    with pytest.raises(ValueError, match="no item is left"):
        model.recommend([[11, 22, 33, 44, 55]], k=1, exclude_seen=True)


def test_recommend_errors(model):
    with pytest.raises(ValueError, match=r"session 1: unknown item id\(s\) \[99\]"):
        model.recommend([[22], [99]], k=3)
    with pytest.raises(ValueError, match=r"k must lie in 1\.\.5"):
        model.recommend([[22]], k=6)
    with pytest.raises(ValueError, match="session 0 is empty"):
        model.recommend([[]], k=3)
    with pytest.raises(ValueError, match="item_ids must have 6 entries"):
        model.set_item_ids(torch.arange(5))


def test_candidate_scores_match_full_scores(model):
    batch = collate([session_graph([1, 2]), session_graph([4, 4, 3])])
    full = model.score(batch)
    cand = torch.tensor([[5, 1, 2], [3, 3, 4]])
    assert torch.allclose(model.score(batch, cand), full.gather(1, cand), atol=1e-6)


def test_item_ids_must_increase(model):
    with pytest.raises(ValueError, match="strictly increasing"):
        model.set_item_ids(torch.tensor([0, 11, 44, 33, 55, 66]))


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("name", ["srgnn", "stamp", "sdm"])
def test_fused_loss_gradients_equal_the_unfused_ones(name, blocked, monkeypatch):
    # inside loss() the item lookup adds its rows into the full softmax's dense table
    # gradient (GradientSink); every parameter's gradient must equal the plain
    # cross-entropy's, with the items in one piece and in blocks
    import graphrec.nn.functional as fn
    from graphrec.models import build_model

    if blocked:  # blocks of 2 items: 10 rows = 5 blocks
        monkeypatch.setattr(fn, "MM_BLOCK", 2)
    torch.manual_seed(0)
    model = build_model(name, num_items=9, hidden_channels=8)
    sessions = [[1, 2, 1, 3], [4, 4, 5], [9, 2]]
    batch = collate([session_graph(s[:-1], target=s[-1]) for s in sessions])
    model.loss(batch).backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert not model.item_embedding.weight.grad.is_sparse  # Adam needs a dense gradient
    model.zero_grad()
    scores = model.score(batch)
    torch.nn.functional.cross_entropy(scores[:, 1:], batch.y - 1).backward()
    plain = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert fused.keys() == plain.keys()
    for n in plain:
        assert torch.allclose(fused[n], plain[n], atol=1e-6), n
    assert fused["item_embedding.weight"][0].abs().sum() == 0  # padding row untouched
    # outside loss() the lookup's gradient is the usual dense one
    model.zero_grad()
    model.session_embedding(batch).sum().backward()
    assert not model.item_embedding.weight.grad.is_sparse


# -- a model meets data: the catalogue must be the model's ----------------------


@pytest.fixture(scope="module")
def splits():
    from graphrec.datasets import synthetic

    kw = dict(num_sessions=2000, num_items=400, num_users=30, num_categories=5)
    return synthetic(**kw), synthetic(**kw, split="test")


def _model_of(train):
    from graphrec.models.base import popularity_reference

    m = SRGNN(train.num_items, hidden_channels=4)
    m.set_item_ids(train.item_ids)
    m.popularity_reference = popularity_reference(train)
    return m


def _relabelled(dataset, perm):
    """The same log with its item ids reassigned by ``perm`` (same catalogue ids)."""
    from graphrec.data import SessionDataset

    items, ptr = dataset.sessions
    return SessionDataset.from_sessions(
        perm[items], ptr, dataset.num_items, item_ids=dataset.item_ids, name="relabelled"
    )


def test_check_data_accepts_the_same_catalogue(splits):
    train, test = splits
    _model_of(train).check_data(test)


def test_check_data_refuses_other_ids_labels_and_sizes(splits):
    from graphrec.data import SessionDataset

    train, test = splits
    model = _model_of(train)
    cuts = (test.sessions, test.sample_session, test.target_position, test.num_items)
    other = SessionDataset(*cuts, item_ids=test.item_ids * 2)
    with pytest.raises(ValueError, match="map item ids differently \\(item 1 is 1 in SRGNN, 2"):
        model.check_data(other)
    labelled = SessionDataset(*cuts, item_ids=test.item_ids)
    labelled.item_labels = [None, *[f"sku-{i}" for i in range(1, test.num_items + 1)]]
    with pytest.raises(ValueError, match="'sku-1' in sessions"):
        model.check_data(labelled)
    with pytest.raises(ValueError, match="has 399 items, synthetic/test has 400"):
        SRGNN(399).check_data(test)
    with pytest.raises(TypeError, match="expected a SessionDataset"):
        model.check_data([])


def test_check_data_refuses_reassigned_ids_by_their_popularity(splits):
    """The same ids, meaning other items: only the popularity can tell, and does."""
    train, test = splits
    model = _model_of(train)
    perm = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(400) + 1])
    with pytest.raises(ValueError, match="do not favour the items popular"):
        model.check_data(_relabelled(test, perm))
    model.popularity_reference = None  # the user vouches for the ids
    model.check_data(_relabelled(test, perm))


def test_popularity_check_stays_silent_without_information():
    """Uniform popularity (nothing to compare) and small catalogues are never refused."""
    from graphrec.models.base import check_popularity

    gen = torch.Generator().manual_seed(0)
    uniform = torch.randint(1, 301, (2, 5000), generator=gen)
    reference = torch.stack([torch.bincount(u, minlength=301).float() for u in uniform])
    counts = torch.bincount(torch.randint(1, 301, (3000,), generator=gen), minlength=301)
    check_popularity(reference, counts.float(), "m", "d")  # no popularity to agree with
    small = torch.zeros(2, 51)
    small[:, 1] = 100
    check_popularity(small, torch.ones(51), "m", "d")  # 50 items: not decided


def test_check_data_users_and_categories(splits):
    from graphrec.models import SDM

    train, test = splits
    sdm = SDM(train.num_items, num_users=10, num_categories=5, hidden_channels=4)
    sdm.set_item_ids(train.item_ids)
    with pytest.raises(ValueError, match="knows 10 users, synthetic/test has user ids up to 30"):
        sdm.check_data(test)
    sdm = SDM(train.num_items, num_users=30, num_categories=5, hidden_channels=4)
    sdm.set_item_ids(train.item_ids)
    sdm.set_item_category(train.item_category.flip(0).clamp(min=0) % 6)
    with pytest.raises(ValueError, match="give items different categories"):
        sdm.check_data(test)


def test_check_finite():
    model = SRGNN(5, hidden_channels=4)
    model.check_finite()
    with torch.no_grad():
        model.item_embedding.weight[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"item_embedding\.weight holds 1 non-finite value"):
        model.check_finite()


def test_recommend_refuses_non_integral_ids(model):
    for session, bad in (([22.5, 33], "22.5"), (["22"], "'22'"), ([True], "True")):
        with pytest.raises(ValueError, match=f"session 0: item id {bad} is not an integer"):
            model.recommend([session], k=2)
    assert model.recommend([[22.0, 33]], k=2).shape == (1, 2)  # integral floats (JSON)


@pytest.mark.parametrize("name", ["srgnn", "stamp", "sdm"])
def test_niser_normalisation(name):
    """normalize=True: scores are scale x the cosine of session and item vectors,
    with unit inputs too; the evaluator's blocked path agrees with score()."""
    from graphrec.datasets import synthetic
    from graphrec.evaluation import Evaluator, evaluate
    from graphrec.models import build_model

    data = synthetic(num_sessions=150, num_items=60, num_categories=4, split="test")
    torch.manual_seed(0)
    model = build_model(name, dataset=data, hidden_channels=8, normalize=True, scale=5.0)
    batch = data.batch(torch.arange(30))
    h = model.session_embedding(batch)
    assert torch.allclose(h.norm(dim=1), torch.full((30,), 5.0), atol=1e-5)
    items = model.item_vectors()
    assert torch.allclose(items[1:].norm(dim=1), torch.ones(60), atol=1e-5)
    assert (items[0] == 0).all()
    scores = model.score(batch)
    assert float(scores[:, 1:].detach().abs().max()) <= 5.0 + 1e-5
    evaluator = Evaluator((10,), num_items=60)
    for start in range(0, len(data), 40):
        index = torch.arange(start, min(start + 40, len(data)))
        evaluator.update(model.score(data.batch(index)), data.y[index])
    assert evaluate(model, data, ks=(10,)) == pytest.approx(evaluator.compute())
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and model.item_embedding.weight.grad is not None
    both = build_model(name, dataset=data, hidden_channels=8, normalize=True, repeat=True)
    assert "normalize=True, scale=12, repeat=True" in repr(both)
    with pytest.raises(ValueError, match="scale must be > 0"):
        build_model(name, dataset=data, hidden_channels=8, normalize=True, scale=0.0)


def test_the_graphs_weighting_is_learnt_kept_and_checked(tmp_path):
    """An SR-GNN trained on count-weighted graphs recommends from count-weighted
    graphs, after loading too, and refuses binary-weighted data; a chain model
    does not read the weights and takes both."""
    from graphrec import STAMP
    from graphrec.data import session_graph
    from graphrec.datasets import synthetic
    from graphrec.training import Trainer, load_model

    kw = dict(num_sessions=300, num_items=50, num_users=10, num_categories=3)
    counted = synthetic(**kw, weighting="count")
    torch.manual_seed(0)
    model = SRGNN(50, hidden_channels=8)
    assert model.graph_weighting is None
    Trainer(model, counted, None, epochs=1, max_steps_per_epoch=2, progress=False,
            run_dir=tmp_path / "run").fit()  # fmt: skip
    assert model.graph_weighting == "count"
    session = [3, 4, 3, 4, 3, 5]  # 3 -> 4 twice, 3 -> 5 once: the weights differ
    graphs = {w: session_graph(session, weighting=w) for w in ("count", "binary")}
    assert not torch.equal(graphs["count"].edge_weight_out, graphs["binary"].edge_weight_out)
    model.eval()
    with torch.no_grad():
        scores = {w: model.score(collate([g]))[0] for w, g in graphs.items()}
    _, got = model.recommend([session], k=5, return_scores=True)
    assert torch.allclose(got[0], scores["count"].topk(5).values)
    assert not torch.allclose(got[0], scores["binary"].topk(5).values)
    loaded = load_model(tmp_path / "run" / "best.pt")
    assert loaded.graph_weighting == "count"
    with pytest.raises(ValueError, match="learnt from 'count'-weighted session graphs"):
        loaded.check_data(synthetic(**kw, split="test"))
    loaded.check_data(synthetic(**kw, split="test", weighting="count"))
    stamp = STAMP(50, hidden_channels=8)
    stamp.set_graph_weighting("count")
    stamp.check_data(synthetic(**kw, split="test"))  # STAMP reads the clicks only


def test_a_hand_built_model_learns_the_training_datas_categories(splits):
    """SDM(num_categories=5) built by hand has an all-zero category table: the
    trainer gives it the training data's (it trained on category 0 for every item
    before, silently), warns when the data has none, and data with categories
    refuses a model that was never given any, saying how to give them."""
    import warnings

    from graphrec.models import SDM
    from graphrec.training import Trainer

    train, test = splits
    sdm = SDM(train.num_items, num_users=30, num_categories=5, hidden_channels=4)
    sdm.set_item_ids(train.item_ids)
    with pytest.raises(ValueError, match="has none set \\(built by hand\\? call set_item_category"):
        sdm.check_data(test)
    Trainer(sdm, train, None, epochs=1, max_steps_per_epoch=1, progress=False)
    assert torch.equal(sdm.item_category, train.item_category)
    sdm.check_data(test)
    bare = SDM(train.num_items, num_users=30, num_categories=5, hidden_channels=4)
    bare.set_item_ids(train.item_ids)
    uncategorised = train.subset(slice(None))
    uncategorised.item_category = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(bare, uncategorised, None, epochs=1, max_steps_per_epoch=1, progress=False)
    assert any("every item trains as category 0" in str(w.message) for w in caught)


@pytest.mark.parametrize("name", ["sdm", "din", "attrec"])
def test_the_unknown_user_is_the_mean_user(name):
    """User 0 of a model with users is the mean of the known users' vectors (issue 22
    §4): no training sample has user 0, so a learned row would stay random."""
    from graphrec.datasets import synthetic
    from graphrec.models import build_model
    from graphrec.models.base import batch_users, user_vectors

    data = synthetic(num_sessions=300, num_items=50, num_users=20, num_categories=5, split="test")
    torch.manual_seed(0)
    model = build_model(name, data, hidden_channels=8).eval()
    table = model.user_embedding
    users = torch.tensor([0, 3, 0, 7])
    e = user_vectors(table, users, model.num_users)
    assert torch.allclose(e[0], table.weight[1:].mean(0)) and torch.equal(e[0], e[2])
    assert torch.equal(e[1], table.weight[3]) and torch.equal(e[3], table.weight[7])
    batch = data.batch(torch.arange(4))
    known = model.score(batch)
    batch.user = torch.zeros_like(batch.user)
    assert torch.equal(batch_users(batch, model.num_users), torch.zeros(4, dtype=torch.long))
    unknown = model.score(batch)
    assert torch.isfinite(unknown[:, 1:]).all() and not torch.equal(known, unknown)


def test_an_unknown_user_gets_sensible_recommendations():
    """SDM trained on the synthetic log recommends better than popularity for users it
    has never seen (every test user replaced by the unknown user 0)."""
    from graphrec.datasets import synthetic
    from graphrec.evaluation import evaluate
    from graphrec.models import build_model
    from graphrec.models.popularity import Popularity
    from graphrec.training import Trainer

    options = {"num_sessions": 1500, "num_items": 120, "num_users": 60, "history_length": 10}
    train, test = (synthetic(split=s, **options) for s in ("train", "test"))
    torch.manual_seed(0)
    model = build_model("sdm", train, hidden_channels=16)
    Trainer(model, train, epochs=3, lr=0.005, progress=False).fit()
    test.user = torch.zeros_like(test.user)
    unknown = evaluate(model.eval(), test, ks=(20,))["HR@20"]
    counts = torch.bincount(train.y, minlength=train.num_items + 1).float()
    popular = evaluate(Popularity(counts), test, ks=(20,))["HR@20"]
    assert unknown > popular + 0.1, (unknown, popular)
