"""`graphrec serve` as a real process on 127.0.0.1: HTTP, SIGTERM drains, reload under load."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(checkpoints, tmp_path):
    port = free_port()
    token = tmp_path / "token"
    token.write_text("t0ken")
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphrec.cli", "serve", str(checkpoints["srgnn"]), "--port",
         str(port), "--max-wait-ms", "5", "--token-file", str(token), "--threads", "1",
         "--summary-every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"server did not start: {proc.stderr.read()}")
    yield proc, url
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def session(checkpoints, i=1):
    from graphrec.training import load_model

    ids = load_model(checkpoints["srgnn"]).item_ids
    return [int(ids[i]), int(ids[i + 1])]


def test_http_endpoints_and_sigterm_drain(server, checkpoints):
    proc, url = server
    r = httpx.post(f"{url}/recommend", json={"session": session(checkpoints), "k": 3})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert httpx.post(f"{url}/recommend", content=b"{", timeout=5).status_code == 400
    # requests in flight when SIGTERM arrives are answered, then the process exits 0
    results, errors = [], []

    def client():
        with httpx.Client(timeout=30) as c:
            for n in range(30):
                try:
                    r = c.post(
                        f"{url}/recommend", json={"session": session(checkpoints, n % 20 + 1)}
                    )
                    results.append(r.status_code)
                except httpx.HTTPError as e:  # the listener closes: no new connections
                    errors.append(type(e).__name__)
                    return

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    code = proc.wait(timeout=60)
    assert code == 0
    assert results and all(s == 200 for s in results)  # none failed mid-request
    assert "stopped: " in proc.stderr.read()  # the last summary (QPS, p50/p99, errors)


def test_reload_under_load_fails_no_request(server, checkpoints):
    proc, url = server
    statuses, versions = [], set()
    stop = threading.Event()

    def client(i):
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                r = c.post(f"{url}/recommend", json={"session": session(checkpoints, i)})
                statuses.append(r.status_code)
                versions.add(r.json().get("version"))

    threads = [threading.Thread(target=client, args=(i + 1,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    auth = {"Authorization": "Bearer t0ken"}
    assert httpx.post(f"{url}/admin/reload", timeout=30).status_code == 401
    r = httpx.post(f"{url}/admin/reload", headers=auth, timeout=30,
                   json={"checkpoint": str(checkpoints["din"])})  # fmt: skip
    assert r.status_code == 200, r.text
    time.sleep(0.5)
    proc.send_signal(signal.SIGHUP)  # reload the same files again
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert statuses and set(statuses) == {200}
    assert len(versions) == 2  # the SR-GNN's and the DIN's answers, no failure between
    assert json.loads(httpx.get(f"{url}/metadata").text)["name"] == "DIN"
