"""Serving an export folder: the same answers as serving its checkpoint."""

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from fastapi.testclient import TestClient

from graphrec.export import export_model
from graphrec.serve import create_app
from graphrec.training import load_model


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("served")
    export_model(checkpoints["srgnn"], out / "srgnn")
    export_model(checkpoints["srgnn"], out / "pipeline", ranker=checkpoints["din"], k=30)
    export_model(checkpoints["text"], out / "text")
    return out


def _requests(ids):
    return [{"session": [int(ids[i]), int(ids[i + 4]), int(ids[i])], "k": 3 + i % 9,
             "exclude_seen": i % 3 > 0} for i in range(1, 40)]  # fmt: skip


@pytest.mark.parametrize("folder,ranker", [("srgnn", False), ("pipeline", True)])
def test_an_export_serves_what_its_checkpoint_serves(checkpoints, exported, folder, ranker):
    ids = load_model(checkpoints["srgnn"]).item_ids
    kwargs = {"ranker": checkpoints["din"], "k": 30} if ranker else {}
    with TestClient(create_app(checkpoints["srgnn"], **kwargs)) as torch_client:
        # one onnxruntime thread: one result every time (see ExportedRecommender)
        with TestClient(create_app(exported / folder, threads=1)) as onnx_client:
            batch = {"requests": _requests(ids)}
            want = torch_client.post("/recommend/batch", json=batch).json()["results"]
            got = onnx_client.post("/recommend/batch", json=batch).json()["results"]
            one = onnx_client.post("/recommend", json=_requests(ids)[5]).json()
            meta = onnx_client.get("/metadata").json()
    for a, b in zip(got, want, strict=True):
        assert a["items"] == b["items"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-4)
        assert a.get("warnings") == b.get("warnings")
    assert one["items"] == got[5]["items"]  # alone as in a batch
    assert meta["name"] == ("TwoStage" if ranker else "SRGNN") and "export" in meta


def test_bad_requests_to_an_export(exported):
    with TestClient(create_app(exported / "srgnn", max_session=20)) as c:
        r = c.post("/recommend", json={"session": [999999, 3, 999998]})
        assert r.status_code == 422 and r.json()["unknown"] == [999999, 999998]
        r = c.post("/recommend", json={"session": ["3"]})
        assert r.status_code == 422 and "integers" in r.json()["error"]
        assert c.post("/recommend", json={"session": [3] * 21}).status_code == 422
        assert c.post("/recommend", json={"session": []}).status_code == 422
    with TestClient(create_app(exported / "text")) as c:
        body = c.post("/recommend", json={"session": ["sku-1", "sku-2"], "k": 3}).json()
        assert all(i.startswith("sku-") for i in body["items"]) and len(body["items"]) == 3
        r = c.post("/recommend", json={"session": ["sku-1", "nope"]})
        assert r.status_code == 422 and r.json()["unknown"] == ["nope"]


def test_an_export_carries_its_ranker_and_index(exported, checkpoints):
    with pytest.raises(ValueError, match="carries its ranker and index"):
        create_app(exported / "srgnn", ranker=checkpoints["din"])


def test_reload_from_a_checkpoint_to_an_export(checkpoints, exported):
    with TestClient(create_app(checkpoints["srgnn"])) as c:
        before = c.get("/metadata").json()["version"]
        r = c.post("/admin/reload", json={"checkpoint": str(exported / "pipeline")})
        assert r.status_code == 200 and r.json()["previous"] == before
        assert c.get("/metadata").json()["name"] == "TwoStage"


def test_the_index_flag_serves_from_the_index_from_the_start(checkpoints):
    """create_app(index=...) built its first engine without the index (only a
    reload used it): the server answered with exact scores under --index hnsw."""
    with TestClient(create_app(checkpoints["srgnn"], index="hnsw")) as c:
        assert c.get("/metadata").json()["index"] == "hnsw"
