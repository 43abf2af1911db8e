"""The HTTP API through FastAPI's test client: every endpoint and every bad input."""

import pytest

pytest.importorskip("fastapi")

import torch
from fastapi.testclient import TestClient

from graphrec.serve import create_app
from graphrec.training import load_model


@pytest.fixture
def client(checkpoints):
    app = create_app(checkpoints["srgnn"], max_body_bytes=4000, max_session=50)
    with TestClient(app) as c:
        yield c


def test_recommend_equals_the_model(client, checkpoints):
    model = load_model(checkpoints["srgnn"])
    ids = model.item_ids
    session = [int(ids[3]), int(ids[7]), int(ids[3])]
    r = client.post("/recommend", json={"session": session, "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    items, scores = model.recommend([session], k=5, exclude_seen=True, return_scores=True)
    assert body["items"] == items[0].tolist()
    assert body["scores"] == pytest.approx(scores[0].tolist(), abs=1e-5)
    assert body["model"] == "SRGNN" and len(body["version"]) == 12 and "warnings" not in body
    seen = client.post("/recommend", json={"session": session, "k": 5, "exclude_seen": False})
    assert seen.json()["items"] == model.recommend([session], k=5)[0].tolist()


def test_batch_equals_one_at_a_time(client, checkpoints):
    ids = load_model(checkpoints["srgnn"]).item_ids
    requests = [{"session": [int(ids[i]), int(ids[i + 1])], "k": 3 + i % 4} for i in range(1, 12)]
    together = client.post("/recommend/batch", json={"requests": requests}).json()["results"]
    alone = [client.post("/recommend", json=r).json() for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert a["items"] == b["items"] and a["scores"] == pytest.approx(b["scores"], abs=1e-5)


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"session": [999999, 1]}, 422, "unknown item ids"),
        ({"session": []}, 422, "non-empty list"),
        ({"session": [1], "k": 0}, 422, "positive integer"),
        ({"session": [1], "k": 2.5}, 422, "invalid request"),
        ({"session": [1], "k": "5"}, 422, "invalid request"),
        ({"session": ["3"]}, 422, "item ids are integers"),
        ({"session": [1.5]}, 422, "invalid request"),
        ({"session": [1], "colour": "red"}, 422, "invalid request"),
        ({"session": list(range(1, 60))}, 422, "at most 50 accepted"),
        ({"k": 5}, 422, "invalid request"),
        ([1, 2], 422, "invalid request"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_json_reason(client, checkpoints, body, status, fragment):
    ids = load_model(checkpoints["srgnn"]).item_ids
    if isinstance(body, dict) and body.get("session") == [1]:
        body = {**body, "session": [int(ids[1])]}
    r = client.post("/recommend", json=body)
    assert r.status_code == status, r.text
    payload = r.json()
    assert fragment in payload["error"] or fragment in str(payload), payload
    assert "Traceback" not in r.text


def test_unknown_ids_are_listed_and_k_is_capped(client, checkpoints):
    ids = load_model(checkpoints["srgnn"]).item_ids
    r = client.post("/recommend", json={"session": [int(ids[2]), 999998, 999999, 999998]})
    assert r.status_code == 422 and r.json()["unknown"] == [999998, 999999]
    r = client.post("/recommend", json={"session": [int(ids[2])], "k": 1000})
    body = r.json()
    assert r.status_code == 200 and len(body["items"]) == 149
    assert body["warnings"] == ["k=1000 capped at 149: only 149 items can be recommended"]


def test_malformed_json_and_oversized_bodies(client):
    r = client.post(
        "/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"] == "malformed JSON"
    r = client.post("/recommend", content=b'{"session": [' + b"1," * 3000 + b"1]}",
                    headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and "over 4000 bytes" in r.json()["error"]
    assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json()
    # curl -d sends a form content type: the body is read as the JSON it is
    form = {"content-type": "application/x-www-form-urlencoded"}
    r = client.post("/recommend", content=b'{"session": [1], "k": 2}', headers=form)
    assert r.status_code in (200, 422) and r.json().get("error") != "invalid request"


def test_health_ready_metadata_openapi(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["status"] == "ready"
    meta = client.get("/metadata").json()
    assert meta["name"] == "SRGNN" and meta["num_items"] == 150 and meta["item_ids"] == "integer"
    assert "/recommend" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_text_ids_users_and_histories(checkpoints):
    with TestClient(create_app(checkpoints["text"])) as c:
        r = c.post("/recommend", json={"session": ["sku-1", "sku-2"], "k": 3, "user": 5})
        body = r.json()
        assert r.status_code == 200 and all(i.startswith("sku-") for i in body["items"])
        assert "the model has no users: user ignored" in body["warnings"]
        r = c.post("/recommend", json={"session": ["sku-1", "nope"]})
        assert r.status_code == 422 and r.json()["unknown"] == ["nope"]
        assert c.post("/recommend", json={"session": [1]}).status_code == 422


def test_pipeline_serves_the_rankers_order(checkpoints):
    from graphrec.models import TwoStage

    with TestClient(create_app(checkpoints["srgnn"], ranker=checkpoints["din"], k=30)) as c:
        retriever, ranker = load_model(checkpoints["srgnn"]), load_model(checkpoints["din"])
        session = [int(retriever.item_ids[5]), int(retriever.item_ids[9])]
        body = c.post("/recommend", json={"session": session, "k": 50}).json()
        pipeline = TwoStage(retriever, ranker, k=30).eval()
        top = pipeline.recommend([session], k=30, exclude_seen=False)[0].tolist()
        expected = [i for i in top if i not in session]  # the candidates, seen ones out
        assert body["items"] == expected and body["model"] == "TwoStage"
        assert body["warnings"][0].startswith(f"k=50 capped at {len(expected)}")


def test_reload_swaps_and_a_bad_one_keeps_the_old(checkpoints, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with TestClient(create_app(checkpoints["srgnn"], token_file=token)) as c:
        before = c.get("/metadata").json()["version"]
        assert c.post("/admin/reload").status_code == 401
        (tmp_path / "bad.pt").write_text("x")
        r = c.post("/admin/reload", json={"checkpoint": str(tmp_path / "bad.pt")},
                   headers={"Authorization": "Bearer s3cret"})  # fmt: skip
        assert r.status_code == 422 and "still serving" in r.json()["error"]
        assert c.get("/metadata").json()["version"] == before
        r = c.post("/admin/reload", json={"checkpoint": str(checkpoints["din"])},
                   headers={"Authorization": "Bearer s3cret"})  # fmt: skip
        assert r.status_code == 200 and r.json()["previous"] == before
        assert c.get("/metadata").json()["name"] == "DIN"


def test_concurrent_requests_are_batched(checkpoints):
    import asyncio

    import httpx

    app = create_app(checkpoints["srgnn"], max_wait_ms=20, max_batch=16)
    ids = load_model(checkpoints["srgnn"]).item_ids

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                bodies = [{"session": [int(ids[i]), int(ids[i + 2])], "k": 4} for i in range(1, 33)]
                together = await asyncio.gather(*(client.post("/recommend", json=b)
                                                  for b in bodies))  # fmt: skip
                alone = [await client.post("/recommend", json=b) for b in bodies]
        return together, alone

    together, alone = asyncio.run(go())
    batcher = app.state.batcher
    for a, b in zip(together, alone, strict=True):
        assert a.json()["items"] == b.json()["items"]
        assert a.json()["scores"] == pytest.approx(b.json()["scores"], abs=1e-5)
    assert batcher.batched_requests == 64 and batcher.batches < 64 - 16  # concurrent ones shared


def test_engine_refuses_users_out_of_range(checkpoints):
    from graphrec.serve import Engine, Request, RequestError

    engine = Engine(checkpoints["din"])
    ids = engine.model.item_ids
    with pytest.raises(RequestError, match=r"user: an integer in 0\.\.30"):
        engine.prepare(Request(session=[int(ids[1])], user=99))
    prepared = engine.prepare(Request(session=[int(ids[1])], user=3, history=[int(ids[2])]))
    (answer,) = engine.answer([prepared])
    assert len(answer.items) == 20 and torch.isfinite(torch.tensor(answer.scores)).all()


def test_an_exact_index_serves_the_exact_top_k(checkpoints):
    from graphrec.serve import Engine, Request

    exact, flat = Engine(checkpoints["srgnn"]), Engine(checkpoints["srgnn"], index="flat")
    ids = exact.model.item_ids
    requests = [Request(session=[int(ids[i]), int(ids[i + 3])], k=7) for i in range(1, 20)]
    a = exact.answer([exact.prepare(r) for r in requests])
    b = flat.answer([flat.prepare(r) for r in requests])
    for x, y in zip(a, b, strict=True):
        assert x.items == y.items and x.scores == pytest.approx(y.scores, abs=1e-4)
    hnsw = Engine(checkpoints["srgnn"], index="hnsw")
    assert hnsw.metadata()["index"] == "hnsw"
    (answer,) = hnsw.answer([hnsw.prepare(requests[0])])
    assert len(answer.items) == 7 and not set(answer.items) & set(requests[0].session)
    with pytest.raises(ValueError, match="index must be"):
        Engine(checkpoints["srgnn"], index="annoy")


def test_context_fields_are_served(checkpoints):
    model = load_model(checkpoints["din-fields"])
    assert model.context_fields == {"hour": 24} and model.item_fields == {"brand": 4}
    ids = model.item_ids
    session = [int(ids[3]), int(ids[9])]
    with TestClient(create_app(checkpoints["din-fields"])) as client:
        assert client.get("/metadata").json()["context_fields"] == ["hour"]
        assert client.get("/metadata").json()["context_values"] == {"hour": 24}
        for context in ({"hour": 7}, {"hour": 20}, None):
            body = {"session": session, "k": 5, "user": 3, "exclude_seen": False}
            if context is not None:
                body["context"] = context
            r = client.post("/recommend", json=body)
            assert r.status_code == 200, r.text
            items, scores = model.recommend(
                [session], k=5, users=[3], contexts=None if context is None else [context],
                return_scores=True,
            )  # fmt: skip
            assert r.json()["items"] == items[0].tolist()
            assert r.json()["scores"] == pytest.approx(scores[0].tolist(), abs=1e-5)
        for context, fragment in (({"device": 1}, "unknown field(s) ['device']"),
                                  ({"hour": 25}, "'hour': expected a value id in 0..24"),
                                  ({"hour": "nine"}, "'hour': expected a value id")):  # fmt: skip
            r = client.post("/recommend", json={"session": session, "context": context})
            assert r.status_code in (400, 422) and fragment in r.text, r.text
    with TestClient(create_app(checkpoints["srgnn"])) as client:
        r = client.post("/recommend", json={"session": [int(ids[3])], "context": {"hour": 3}})
        assert r.status_code == 200 and "reads no context" in r.text
