"""Load test of ``graphrec serve`` on 127.0.0.1: QPS and latency percentiles.

    python benchmarks/bench_serve.py --checkpoint runs/srgnn-diginetica/best.pt \\
        [--ranker runs/din-diginetica/best.pt] [--dataset diginetica] \\
        [--concurrency 1 8 32 128] [--seconds 10] [--soak 300]

For each setting a server is started as a real process (``graphrec serve``,
loopback only, one torch thread) and driven by asyncio clients (httpx) posting
sessions of the test split for a fixed time; then it is stopped. Printed per
concurrency: requests/s, p50 / p95 / p99 latency and errors, for the exact
scoring with micro-batching, one request at a time (``--max-batch 1``, the
gain as a ratio in the same run), a faiss HNSW index, with ``--ranker``,
the pipeline, and with ``--export`` the given export folders (onnxruntime). With
``--soak`` the default setting runs that many seconds more and the server's
RSS is read at its start and its end. The server and the clients share the
machine's cores: the server's torch computes on one thread, the clients run in
this process's event loop (aiohttp; uvicorn serves with httptools and uvloop).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import psutil
import torch

from graphrec.datasets import load_dataset
from graphrec.training import load_checkpoint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(checkpoint: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphrec.cli", "serve", checkpoint, "--port", str(port),
         "--threads", "1", "--summary-every", "3600", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=60)


async def drive(url: str, sessions: list[list], concurrency: int, seconds: float, k: int):
    """Requests/s, latencies (s) and errors of ``concurrency`` clients for ``seconds``
    (aiohttp: httpx's async client tops out near 1,500 requests/s on one core, and
    falls below 500 with 32 connections, which would measure the client)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:

        async def worker(i: int) -> None:
            nonlocal errors
            n = i
            while time.perf_counter() < deadline:
                body = {"session": sessions[n % len(sessions)], "k": k}
                n += concurrency
                start = time.perf_counter()
                try:
                    async with client.post("/recommend", json=body) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        begin = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - begin
    return len(latencies) / elapsed, sorted(latencies), errors


def percentile(values: list[float], q: float) -> float:
    return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--ranker", default=None)
    parser.add_argument("--export", nargs="*", default=[],
                        help="export folders (graphrec export) to serve as well")  # fmt: skip
    parser.add_argument("--dataset", default=None, help="default: the checkpoint's")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--soak", type=float, default=0.0, help="seconds (0: no soak)")
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=5000)
    args = parser.parse_args()
    state = load_checkpoint(args.checkpoint)
    name = args.dataset or state["run_info"]["dataset"]
    test = load_dataset(name, "test", cache=False)
    index = torch.arange(min(args.sessions, len(test)))
    batch = test.batch(index)
    clicks, ptr = batch.x[batch.alias], batch.click_ptr()
    ids = test.item_ids
    bounds = ptr.tolist()
    sessions = [ids[clicks[a:b]].tolist() for a, b in itertools.pairwise(bounds)]
    print(f"{name}: {test.num_items} items, {len(sessions)} test sessions as requests, k={args.k}")
    print(f"machine: {os.cpu_count()} CPU(s); server: 1 torch thread; clients: this process")
    settings = [("exact, micro-batched", args.checkpoint, []),
                ("exact, one at a time", args.checkpoint, ["--max-batch", "1"]),
                ("faiss HNSW, micro-batched", args.checkpoint, ["--index", "hnsw"])]  # fmt: skip
    if args.ranker:
        settings.append((f"pipeline -> {Path(args.ranker).parent.name} (k=100)", args.checkpoint,
                         ["--ranker", args.ranker, "-k", "100"]))  # fmt: skip
    for folder in args.export:
        settings.append((f"export {Path(folder).name}", folder, []))
    rows = {}
    for label, checkpoint, extra in settings:
        proc, url = start(checkpoint, extra)
        try:
            for c in args.concurrency:
                asyncio.run(drive(url, sessions, c, 1.0, args.k))  # warm-up
                qps, lat, errors = asyncio.run(drive(url, sessions, c, args.seconds, args.k))
                rows[(label, c)] = qps
                print(f"{label:<34} concurrency {c:>4}: {qps:8.1f} requests/s, p50 "
                      f"{percentile(lat, 0.5):6.1f} ms, p95 {percentile(lat, 0.95):6.1f} ms, "
                      f"p99 {percentile(lat, 0.99):6.1f} ms, {errors} error(s)",
                      flush=True)  # fmt: skip
        finally:
            stop(proc)
    for c in args.concurrency:
        batched, single = rows[(settings[0][0], c)], rows[(settings[1][0], c)]
        print(f"micro-batching gain at concurrency {c}: {batched / single:.2f}x")
    if args.soak:
        proc, url = start(args.checkpoint, [])
        try:
            rss = psutil.Process(proc.pid)
            asyncio.run(drive(url, sessions, 32, 5.0, args.k))
            before = rss.memory_info().rss
            qps, lat, errors = asyncio.run(drive(url, sessions, 32, args.soak, args.k))
            after = rss.memory_info().rss
            print(f"soak {args.soak:.0f} s at concurrency 32: {qps:.1f} requests/s, p99 "
                  f"{percentile(lat, 0.99):.1f} ms, {errors} error(s); server RSS "
                  f"{before / 2**20:.0f} -> {after / 2**20:.0f} MiB "
                  f"({100 * (after - before) / before:+.1f}%)")  # fmt: skip
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
