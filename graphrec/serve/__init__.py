"""Serving recommendations over HTTP: ``graphrec serve`` (FastAPI + uvicorn).

The serving code imports the library, never the other way round; it needs the
optional extra ``pip install "graphrec[serve]"``.
"""

from graphrec.serve.engine import Answer, Engine, Request, RequestError

__all__ = ["Answer", "Engine", "Request", "RequestError", "create_app"]


def create_app(*args, **kwargs):
    """:func:`graphrec.serve.app.create_app` (imported on use: FastAPI is optional)."""
    try:
        from graphrec.serve.app import create_app as create
    except ImportError as e:
        raise ImportError(
            f'serving needs FastAPI and uvicorn: pip install "graphrec[serve]" ({e})'
        ) from None
    return create(*args, **kwargs)
