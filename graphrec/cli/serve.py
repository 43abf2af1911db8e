"""``graphrec serve``: a checkpoint (or a retriever -> ranker pipeline) over HTTP."""

from __future__ import annotations

import argparse
import logging

from graphrec.cli import common

log = logging.getLogger("graphrec.serve")

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn
    except ImportError:
        raise ImportError('graphrec serve needs uvicorn: pip install "graphrec[serve]"') from None
    from graphrec.serve import create_app

    if args.host not in LOOPBACK and args.token_file is None:
        log.warning("serving on %s without --token-file: /admin/* is open to anyone who "
                    "reaches it", args.host)  # fmt: skip
    app = create_app(
        args.checkpoint, ranker=args.ranker, k=args.k, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, max_body_bytes=args.max_body_bytes,
        max_session=args.max_session, token_file=args.token_file,
        summary_every=args.summary_every, threads=args.threads, index=args.index,
    )  # fmt: skip
    # the summaries at info (a line per request at debug, with -v), through main's handler
    logging.getLogger("graphrec.serve").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    print(f"serving {args.checkpoint} on http://{args.host}:{args.port} (docs: /docs)",
          flush=True)  # fmt: skip
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=args.drain_seconds)  # fmt: skip
    _server_class()(config).run()


def _server_class():
    """uvicorn's server, exiting 0 after a SIGTERM: it stops accepting, the requests in
    flight finish, the app answers what it has queued (uvicorn itself re-raises
    SIGTERM at exit, which ends the process by the signal)."""
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            if sig == signal.SIGTERM and sig in self._captured_signals:
                self._captured_signals.remove(sig)  # a drained SIGTERM is a clean exit

    return Server


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", parents=parents, help="serve a checkpoint (or a pipeline) over HTTP"
    )
    p.add_argument(
        "checkpoint", help="the model: a graphrec checkpoint (best.pt) or an export folder"
    )
    p.add_argument("--ranker", default=None, help="a ranker checkpoint: serve the pipeline")
    p.add_argument("-k", type=common.positive_int, default=100, help="pipeline candidates")
    p.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    p.add_argument("--port", type=common.positive_int, default=8000)
    p.add_argument("--max-batch", type=common.positive_int, default=64)
    p.add_argument("--max-wait-ms", type=common.nonnegative_float, default=2.0,
                   help="how long a request waits for others to batch with")  # fmt: skip
    p.add_argument("--max-body-bytes", type=common.positive_int, default=1 << 20)
    p.add_argument("--max-session", type=common.positive_int, default=200)
    p.add_argument("--token-file", default=None, help="bearer token required by /admin/*")
    p.add_argument("--summary-every", type=common.positive_float, default=60.0,
                   help="seconds between logged summaries (QPS, p50/p99, errors)")  # fmt: skip
    p.add_argument("--threads", type=common.positive_int, default=None, help="torch threads")
    p.add_argument("--index", choices=["flat", "hnsw", "ivf"], default=None,
                   help="top-k from a faiss index (default: exact scores)")  # fmt: skip
    p.add_argument("--drain-seconds", type=common.positive_int, default=30,
                   help="on SIGTERM, how long requests in flight may take")  # fmt: skip
    p.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])  # fmt: skip
    p.set_defaults(func=cmd_serve)
