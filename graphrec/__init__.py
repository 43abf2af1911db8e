"""graphrec: graph-native session-based and sequential recommendation on PyG."""

from graphrec import data

__version__ = "0.1.0"

__all__ = ["__version__", "data"]
