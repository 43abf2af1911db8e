import pytest
import torch

from graphrec.nn import FieldEmbedding
from graphrec.nn.field_embedding import check_fields

# 4 items: brand (single-valued) and genres (multi-valued, 0-padded)
BRAND = torch.tensor([0, 1, 2, 0, 1])
GENRE = torch.tensor([[0, 0], [1, 3], [2, 0], [0, 0], [3, 3]])


def layer() -> FieldEmbedding:
    torch.manual_seed(0)
    f = FieldEmbedding(4, {"brand": 2, "genre": 3}, channels=5)
    f.set_tables({"brand": BRAND, "genre": GENRE})
    return f


def test_lookup_is_the_mean_of_the_values_vectors():
    f = layer()
    brand, genre = f(torch.tensor([[1, 2], [3, 4]]))
    b, g = f.embeddings[0].weight, f.embeddings[1].weight
    assert brand.shape == genre.shape == (2, 2, 5)
    torch.testing.assert_close(brand[0, 0], b[1])
    torch.testing.assert_close(brand[1, 0], torch.zeros(5))  # item 3: unknown brand
    torch.testing.assert_close(genre[0, 0], (g[1] + g[3]) / 2)
    torch.testing.assert_close(genre[0, 1], g[2])  # one value: its own vector
    torch.testing.assert_close(genre[1, 0], torch.zeros(5))  # no genre
    torch.testing.assert_close(genre[1, 1], g[3])  # a value listed twice counts twice
    torch.testing.assert_close(f.sum(torch.tensor([1])), (b[1] + (g[1] + g[3]) / 2).view(1, 5))


def test_unknown_rows_stay_zero_and_get_no_gradient():
    f = layer()
    for emb in f.embeddings:
        assert not emb.weight[0].any()
    f.sum(torch.tensor([0, 1, 3, 4])).sum().backward()
    for emb in f.embeddings:
        assert not emb.weight.grad[0].any()
    f.reset_parameters(std=0.1)
    assert all(not emb.weight[0].any() for emb in f.embeddings)
    torch.testing.assert_close(f.tables()["genre"], GENRE)  # tables are data: kept


def test_tables_are_checked():
    f = FieldEmbedding(4, {"brand": 2}, channels=3)
    with pytest.raises(ValueError, match="missing"):
        f.set_tables({})
    with pytest.raises(ValueError, match="5 rows"):
        f.set_tables({"brand": torch.tensor([0, 1, 2])})
    with pytest.raises(ValueError, match=r"0\.\.2"):
        f.set_tables({"brand": torch.tensor([0, 1, 3, 0, 1])})
    with pytest.raises(ValueError, match="row 0"):
        f.set_tables({"brand": torch.tensor([1, 1, 2, 0, 1])})
    with pytest.raises(ValueError, match="integers"):
        f.set_tables({"brand": torch.tensor([0.0, 1, 2, 0, 1])})
    with pytest.raises(ValueError, match="identifier"):
        check_fields({"release year": 3})
    with pytest.raises(ValueError, match=">= 1"):
        check_fields({"year": 0})


def test_state_dict_round_trip_takes_the_stored_width():
    f = layer()
    g = FieldEmbedding(4, {"brand": 2, "genre": 3}, channels=5)  # tables of width 1
    g.load_state_dict(f.state_dict())
    assert g.tables()["genre"].shape == (5, 2)
    ids = torch.tensor([1, 2, 4])
    for a, b in zip(f(ids), g(ids), strict=True):
        torch.testing.assert_close(a, b)
    assert "genre=3x2" in repr(g)


def test_encode_context_takes_value_ids_or_a_logs_values() -> None:
    from graphrec.nn.field_embedding import encode_context, label_index

    sizes = {"hour": 24, "device": 2}
    labels = label_index({"device": [None, "desktop", "mobile"]})
    assert labels == {"device": {"desktop": 1, "mobile": 2}}
    ids, notes = encode_context({"hour": 9, "device": "mobile"}, sizes, labels)
    assert ids == {"hour": 9, "device": 2} and notes == []
    ids, notes = encode_context({"device": " phone ", "hour": None}, sizes, labels)
    assert ids == {"device": 0, "hour": 0}
    assert notes == ["context 'device': value ' phone ' is not among the training log's: unknown"]
    # a log's values are compared as text: 7 is the value "7"
    ids, _ = encode_context({"device": 7}, {"device": 2}, label_index({"device": [None, "3", "7"]}))
    assert ids == {"device": 2}
    for bad, message in (
        ({"hour": 25}, r"'hour': expected a value id in 0..24"),
        ({"hour": "9"}, r"'hour': expected a value id"),
        ({"hour": True}, r"'hour': expected a value id"),
        ({"device": 1.5}, r"'device': expected one of the log's values"),
        ({"os": 1}, r"unknown context field\(s\) \['os'\]"),
    ):
        with pytest.raises(ValueError, match=message):
            encode_context(bad, sizes, labels)
    with pytest.raises(ValueError, match="a context is a dict"):
        encode_context([9], sizes, labels)
