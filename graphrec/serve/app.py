"""The HTTP server: FastAPI over one engine, micro-batched, reloadable, drained on SIGTERM.

FastAPI (on Starlette and uvicorn) because it is the maintained ASGI stack
with request models that document themselves (``/docs``, ``/openapi.json``)
and an in-process test client; asyncio suits micro-batching, where many
requests wait while one batch is scored.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import statistics
import time
from collections import deque
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from graphrec.serve.batcher import MicroBatcher
from graphrec.serve.engine import Engine, RequestError, load_engine
from graphrec.serve.engine import Request as EngineRequest

log = logging.getLogger("graphrec.serve")

ItemId = int | str


class RecommendBody(BaseModel):
    """One session, in the log's own item ids."""

    model_config = ConfigDict(strict=True, extra="forbid")
    session: list[ItemId] = Field(description="the session's clicks, oldest first")
    k: int = Field(20, description="how many items to return (capped, with a warning)")
    exclude_seen: bool = Field(True, description="never return an item of the session")
    user: ItemId | None = Field(None, description="the session's user (models with users)")
    history: list[ItemId] | None = Field(None, description="long-term history (SDM, DIN, DIEN)")
    context: dict[str, int | str | None] | None = Field(
        None,
        description='context fields, e.g. {"hour": 9}: value ids, or a click log\'s own values '
        '({"device": "mobile"}); /metadata lists what each field takes',
    )


class BatchBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    requests: list[RecommendBody]


class ReloadBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    checkpoint: str | None = Field(None, description="default: the one being served")
    ranker: str | None = None


def _error(status: int, message: str, **detail: Any) -> JSONResponse:
    return JSONResponse({"error": message, **detail}, status_code=status)


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets a 413, read or not;
    a body posted without a JSON content type (``curl -d``) is read as JSON."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or {})
        if scope.get("method") == "POST" and headers.get(b"content-type", b"").split(b";")[0] in (
            b"",
            b"application/x-www-form-urlencoded",  # curl -d's default: the API reads JSON only
        ):
            headers[b"content-type"] = b"application/json"
            scope = {**scope, "headers": list(headers.items())}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = _error(413, f"request body over {self.limit} bytes")
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            response = _error(413, f"request body over {self.limit} bytes")
            await response(scope, receive, send)


class _TooLarge(Exception):
    pass


class _Stats:
    """Latencies and counts since the last summary."""

    def __init__(self) -> None:
        self.latencies: deque[float] = deque(maxlen=100_000)
        self.requests = self.errors = 0
        self.since = time.perf_counter()

    def summary(self) -> str:
        seconds = max(time.perf_counter() - self.since, 1e-9)
        lat = sorted(self.latencies)
        p50 = 1000 * statistics.median(lat) if lat else 0.0
        p99 = 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else 0.0
        text = (
            f"{self.requests / seconds:.1f} requests/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"{self.errors} error(s) in {seconds:.0f} s"
        )
        self.latencies.clear()
        self.requests = self.errors = 0
        self.since = time.perf_counter()
        return text


def create_app(
    checkpoint: str | Path,
    ranker: str | Path | None = None,
    k: int = 100,
    max_batch: int = 64,
    max_wait_ms: float = 2.0,
    max_body_bytes: int = 1 << 20,
    max_session: int = 200,
    token_file: str | Path | None = None,
    summary_every: float = 60.0,
    threads: int | None = None,
    index: str | None = None,
) -> FastAPI:
    """The server's application (run it with uvicorn; ``graphrec serve`` does).

    Args:
        checkpoint: the model to serve: a graphrec checkpoint, or an export
            folder (``graphrec export``; it carries its ranker, ``k`` and index).
        ranker (optional): a ranker checkpoint: the pipeline ``checkpoint -> ranker``.
        k (int): the pipeline's candidates. (default: ``100``)
        max_batch (int): requests scored at once. (default: ``64``)
        max_wait_ms (float): how long a request waits for others to batch with.
            (default: ``2``)
        max_body_bytes (int): the largest request body. (default: 1 MiB)
        max_session (int): the longest session. (default: ``200``)
        token_file (optional): a file holding the bearer token that ``/admin/*``
            requires (default: none required).
        summary_every (float): seconds between the logged summaries (QPS,
            latency percentiles, errors). (default: ``60``)
        threads (int, optional): torch's CPU threads (onnxruntime's for an export).
        index (str, optional): serve the top-k from a faiss index (``"hnsw"``, ...).
    """
    token = Path(token_file).read_text().strip() if token_file else None
    if token_file and not token:
        raise ValueError(f"{token_file}: the token file is empty")
    state: dict[str, Any] = {
        "engine": load_engine(
            checkpoint, ranker=ranker, k=k, max_session=max_session, threads=threads, index=index
        ),
        "paths": (str(checkpoint), None if ranker is None else str(ranker)),
        "ready": False,
    }
    batcher = MicroBatcher(max_batch=max_batch, max_wait_ms=max_wait_ms)
    stats = _Stats()
    lock = asyncio.Lock()

    async def reload(path: str | None = None, ranker_path: str | None = None) -> dict:
        """Load a new engine beside the serving one and swap it in (atomically)."""
        async with lock:
            old = state["engine"]
            new_paths = (path or state["paths"][0], ranker_path or state["paths"][1])
            engine = await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: load_engine(
                    new_paths[0], ranker=new_paths[1], k=k, max_session=max_session, index=index
                ),
            )
            state["engine"], state["paths"] = engine, new_paths
            log.info("reloaded: %s -> %s", old.version, engine.version)
            return {"previous": old.version, "version": engine.version}

    async def summarise() -> None:
        while True:
            await asyncio.sleep(summary_every)
            log.info("summary: %s", stats.summary())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        ticker = asyncio.get_running_loop().create_task(summarise())

        def on_hangup() -> None:
            async def go():
                try:
                    await reload()
                except Exception as e:  # the old engine keeps serving
                    log.error("SIGHUP reload failed, still serving the old model: %s", e)

            asyncio.get_running_loop().create_task(go())

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, on_hangup)
        except (RuntimeError, NotImplementedError, ValueError):
            pass  # not the main thread (a test client), or no SIGHUP on this platform
        # the model and its tables are long-lived: out of the collector's way, and
        # collections rarer (a full one over them stalls every request in flight)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        state["ready"] = True
        log.info("serving %r", state["engine"])
        yield
        state["ready"] = False
        ticker.cancel()
        await batcher.close()  # answers what is queued
        log.info("stopped: %s", stats.summary())

    app = FastAPI(title="graphrec", summary="Next-item recommendation", lifespan=lifespan)
    app.add_middleware(_BodyLimit, limit=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        stats.errors += 1
        raw = await request.body()
        try:
            json.loads(raw) if raw else None
        except ValueError:  # with any content type, or none
            return _error(400, "malformed JSON")
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return _error(400, "malformed JSON")
        problems = [
            {"field": ".".join(str(p) for p in e.get("loc", ())[1:]), "problem": e.get("msg")}
            for e in exc.errors()
        ]
        return _error(422, "invalid request", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        stats.errors += 1
        log.exception("internal error on %s", request.url.path)
        return _error(500, "internal error (logged by the server)")

    async def answer_one(body: RecommendBody, engine: Engine) -> dict:
        prepared = engine.prepare(EngineRequest(**body.model_dump()))
        answer = await batcher.submit(prepared, engine)
        out = {"items": answer.items, "scores": answer.scores, "model": engine.name,
               "version": engine.version}  # fmt: skip
        if answer.warnings:
            out["warnings"] = answer.warnings
        return out

    @app.post("/recommend", summary="top-k next items for one session")
    async def recommend(body: RecommendBody):
        start = time.perf_counter()
        engine = state["engine"]
        try:
            out = await answer_one(body, engine)
        except RequestError as e:
            stats.errors += 1
            return _error(422, str(e), **e.detail)
        stats.requests += 1
        stats.latencies.append(time.perf_counter() - start)
        log.debug("recommend: %d clicks, k=%d, %.1f ms", len(body.session), body.k,
                  1000 * (time.perf_counter() - start))  # fmt: skip
        return out

    @app.post("/recommend/batch", summary="top-k next items for several sessions")
    async def recommend_batch(body: BatchBody):
        start = time.perf_counter()
        engine = state["engine"]
        if not body.requests:
            return _error(422, "requests: at least one is needed")
        try:
            prepared = []
            for n, r in enumerate(body.requests):
                try:
                    prepared.append(engine.prepare(EngineRequest(**r.model_dump())))
                except RequestError as e:
                    raise RequestError(f"requests[{n}]: {e}", **e.detail) from None
        except RequestError as e:
            stats.errors += 1
            return _error(422, str(e), **e.detail)
        answers = await asyncio.gather(*(batcher.submit(p, engine) for p in prepared))
        stats.requests += len(answers)
        stats.latencies.append(time.perf_counter() - start)
        results = []
        for a in answers:
            item = {"items": a.items, "scores": a.scores}
            if a.warnings:
                item["warnings"] = a.warnings
            results.append(item)
        return {"results": results, "model": engine.name, "version": engine.version}

    @app.get("/health", summary="the process is up")
    async def health():
        return {"status": "ok"}

    @app.get("/ready", summary="a model is loaded and requests are served")
    async def ready():
        if not state["ready"]:
            return _error(503, "not ready")
        return {"status": "ready", "version": state["engine"].version}

    @app.get("/metadata", summary="the model served")
    async def metadata():
        return state["engine"].metadata()

    @app.post("/admin/reload", summary="swap in a new checkpoint (requests in flight finish)")
    async def admin_reload(
        body: ReloadBody | None = None,
        authorization: Annotated[str | None, Header()] = None,
    ):
        if token is not None and authorization != f"Bearer {token}":
            return _error(401, "a bearer token is required (Authorization: Bearer ...)")
        body = body or ReloadBody()
        try:
            return await reload(body.checkpoint, body.ranker)
        except (OSError, ValueError) as e:
            return _error(422, f"not reloaded, still serving {state['engine'].version}: {e}")

    app.state.graphrec = state
    app.state.batcher = batcher
    app.state.stats = stats
    return app
