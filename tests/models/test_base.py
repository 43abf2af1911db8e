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


# -- side fields (item, user, context), shared by every model ------------------------
from graphrec.data import SessionDataset, sessions_from_lists  # noqa: E402
from graphrec.models import build_model  # noqa: E402

FIELD_MODELS = ("srgnn", "stamp", "attrec", "sdm", "din", "dien")
BRAND = torch.tensor([0, 1, 2, 1, 3, 2, 1, 3, 2])  # 8 items
GENRE = torch.tensor([[0, 0], [1, 2], [3, 0], [2, 2], [1, 0], [0, 0], [3, 1], [2, 0], [1, 3]])
AGE = torch.tensor([0, 1, 2, 3, 1])  # 4 users


def field_data(users: bool = True) -> SessionDataset:
    items, ptr = sessions_from_lists([[1, 2, 3, 4], [2, 5, 6], [3, 1, 2, 7, 8], [8, 6, 4]])
    data = SessionDataset.from_sessions(
        items, ptr, 8, session_user=torch.tensor([1, 2, 3, 4]) if users else None,
        history_length=3, num_users=4 if users else None,
    )  # fmt: skip
    return SessionDataset(
        data.sessions, data.sample_session, data.target_position, 8, user=data.user,
        history=data.history, num_users=data.num_users,
        item_features={"brand": BRAND, "genre": GENRE},
        user_features={"age": AGE} if users else None,
        context={"hour": torch.arange(len(data)) % 24 + 1}, context_sizes={"hour": 24},
    )  # fmt: skip


def field_model(name: str, **kwargs):
    torch.manual_seed(0)
    return build_model(name, dataset=field_data(), **kwargs)


def field_vectors(model, layer_name: str, ids: torch.Tensor) -> list[torch.Tensor]:
    """Each field's vector of ``ids``, by hand: the mean of its values' rows."""
    layer = getattr(model, layer_name)
    out = []
    for emb, table in zip(layer.embeddings, layer.tables().values(), strict=True):
        rows = []
        for i in ids.tolist():
            values = [v for v in table[i].tolist() if v]
            rows.append(emb.weight[values].mean(0) if values else torch.zeros(emb.embedding_dim))
        out.append(torch.stack(rows))
    return out


@pytest.mark.parametrize("name", FIELD_MODELS)
def test_build_model_reads_every_field_of_the_data(name):
    model = field_model(name)
    assert model.item_fields == {"brand": 3, "genre": 3}
    ranker = name in ("din", "dien")
    assert model.user_fields == ({"age": 3} if name in ("sdm", "din", "dien") else {})
    assert model.context_fields == ({"hour": 24} if ranker else {})
    assert torch.equal(model.item_field_embedding.tables()["genre"], GENRE)
    off = field_model(name, item_fields=None)
    assert off.item_fields == {} and off.item_field_embedding is None
    only = field_model(name, item_fields="genre")
    assert only.item_fields == {"genre": 3}
    with pytest.raises(ValueError, match=r"item_fields \['shop'\] not in the data"):
        field_model(name, item_fields=("genre", "shop"))
    with pytest.raises(ValueError, match="takes field names"):
        field_model(name, item_fields=7)


@pytest.mark.parametrize("name", ("srgnn", "stamp", "sdm"))
def test_retrieval_item_vector_adds_the_fields_on_both_sides(name):
    model = field_model(name)
    ids = torch.arange(9)
    brand, genre = field_vectors(model, "item_field_embedding", ids)
    expected = model.item_embedding.weight + brand + genre
    torch.testing.assert_close(model.item_table(), expected)
    assert not model.item_table()[0].any()  # padding stays zero
    torch.testing.assert_close(model.embed_item_rows(torch.tensor([3, 1])), expected[[3, 1]])
    batch = field_data().batch([0, 3, 5])
    scores = model.score(batch)
    torch.testing.assert_close(scores[:, 1:], model.session_embedding(batch) @ expected[1:].t())


def test_attrec_adds_the_fields_to_its_short_term_item_vectors():
    model = field_model("attrec")
    brand, genre = field_vectors(model, "item_field_embedding", torch.arange(9))
    x = model.item_embedding.weight + brand + genre
    norm = x.norm(dim=-1, keepdim=True)
    clipped = x * torch.clamp(model.max_norm / norm.clamp(min=1e-12), max=1.0)
    rows = model.item_rows(torch.arange(9))
    torch.testing.assert_close(
        rows[:, -model.hidden_channels :], clipped * (1 - model.omega) ** 0.5
    )


@pytest.mark.parametrize("name", ("din", "dien"))
def test_ranker_concatenates_item_fields_and_feeds_profile_and_context(name):
    model = field_model(name)
    ids = torch.tensor([[1, 6], [0, 8]])
    brand, genre = field_vectors(model, "item_field_embedding", ids.view(-1))
    expected = torch.cat([model.item_embedding.weight[ids.view(-1)], brand, genre], dim=-1)
    torch.testing.assert_close(model.embed_items(ids), expected.view(2, 2, -1))
    assert model.item_channels == 3 * model.hidden_channels
    batch = field_data().batch([0, 4])
    (age,) = field_vectors(model, "user_field_embedding", batch.user)
    hour = model.context_embedding["hour"].weight[batch.context_hour]
    user = model.user_embedding.weight[batch.user]
    torch.testing.assert_close(model.embed_user(batch), torch.cat([user, age, hour], dim=-1))


def test_sdm_attends_per_field_and_builds_e_u_from_the_profile():
    model = field_model("sdm")
    batch = field_data().batch([0, 4, 6])
    items, _ = batch.sequences()
    features = model._embed([items])[0]
    assert len(features) == 3  # item, brand, genre: one long-term attention each
    torch.testing.assert_close(features[0], model.item_embedding.weight[items])
    (age,) = field_vectors(model, "user_field_embedding", batch.user)
    user = model.user_embedding.weight[batch.user]
    torch.testing.assert_close(model.user_query(batch), model.lin_user(torch.cat([user, age], -1)))
    assert model.lstm.input_size == 3 * model.hidden_channels


@pytest.mark.parametrize("name", FIELD_MODELS)
def test_fields_are_read_batch_invariant_and_saved(name):
    model = field_model(name).eval()
    data = field_data()
    batch = data.batch(list(range(len(data))))
    scores = model.score(batch)
    for i in range(len(data)):
        torch.testing.assert_close(model.score(data.batch([i])), scores[i : i + 1])
    # a field's values change the scores: the model reads them
    genre = GENRE.clone()
    genre[1:] = genre[1:].roll(1, 0)
    changed = field_model(name).eval()
    changed.set_item_features({"brand": BRAND, "genre": genre})
    assert not torch.allclose(changed.score(batch), scores)
    # the tables travel with the weights; the width of a multi-valued table too
    again = build_model(name, **model.config())
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again.eval().score(batch), scores)
    loss = field_model(name).loss(batch)
    loss.backward()
    assert torch.isfinite(loss)


def test_a_model_without_its_tables_is_refused():
    from graphrec import DIN

    model = DIN(8, item_fields={"brand": 3})
    with pytest.raises(
        ValueError, match=r"no values for its item field 'brand'.*set_item_features"
    ):
        model.check_data(field_data())
    model.set_item_features({"brand": BRAND, "genre": GENRE})  # extra fields are ignored
    model.check_data(field_data())
    other = BRAND.clone()
    other[2] = 3
    model.set_item_features({"brand": other})
    with pytest.raises(ValueError, match="different values of 'brand'"):
        model.check_data(field_data())
    with pytest.raises(ValueError, match="no user fields"):
        model.set_user_features({"age": AGE})
    with pytest.raises(ValueError, match="need users"):
        DIN(8, user_fields={"age": 3})


def test_recommend_takes_contexts():
    model = field_model("din").eval()
    a = model.recommend([[1, 2]], k=8, users=[2], contexts=[{"hour": 3}], return_scores=True)[1]
    b = model.recommend([[1, 2]], k=8, users=[2], contexts=[{"hour": 20}], return_scores=True)[1]
    unknown = model.recommend([[1, 2]], k=8, users=[2], return_scores=True)[1]
    assert not torch.allclose(a, b) and not torch.allclose(a, unknown)
    with pytest.raises(ValueError, match=r"session 0: unknown context field\(s\) \['device'\]"):
        model.recommend([[1, 2]], k=3, contexts=[{"device": 1}])
    with pytest.raises(
        ValueError, match=r"'hour': expected a value id in 0\.\.24 \(0 = unknown\), got 25"
    ):
        model.recommend([[1, 2]], k=3, contexts=[{"hour": 25}])
    batch = field_data().batch([0])
    batch.context_hour = torch.tensor([30])
    with pytest.raises(ValueError, match=r"context field 'hour': values must lie in 0\.\.24"):
        model.score(batch)
    with pytest.warns(UserWarning, match="reads no context"):
        field_model("srgnn").recommend([[1, 2]], k=3, contexts=[{"hour": 3}])


@pytest.mark.parametrize("name", ("din", "dien"))
def test_field_channels_narrow_the_side_fields(name):
    model = field_model(name, field_channels=5)
    d = model.hidden_channels
    assert model.item_channels == d + 2 * 5  # item, brand, genre
    assert model.user_channels == d + 2 * 5  # user, age; hour
    assert model.embed_items(torch.tensor([[1, 2]])).shape == (1, 2, d + 10)
    assert model.item_field_embedding.channels == 5
    batch = field_data().batch([0, 1, 2])
    assert torch.isfinite(model.loss(batch))
    with pytest.raises(ValueError, match="field_channels must be >= 1"):
        field_model(name, field_channels=0)


def test_a_field_without_any_value_is_left_out_with_a_warning():
    data = field_data()
    data.item_features["brand"] = torch.zeros_like(data.item_features["brand"])
    with pytest.warns(UserWarning, match=r"item_features \['brand'\] hold no value"):
        model = build_model("srgnn", dataset=data)
    assert model.item_fields == {"genre": 3}
    model.check_data(data)
