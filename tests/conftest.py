import os
from pathlib import Path

import pytest

SHARED = Path(
    os.environ.get("GRAPHREC_DATA", Path(__file__).parents[1] / ".." / "shared" / "datasets")
)


@pytest.fixture
def shared_data() -> Path:
    """The real benchmark data root; tests using it skip cleanly when it is absent."""
    if not (SHARED / "diginetica" / "train_sessions.txt").is_file():
        pytest.skip(f"benchmark data not found under {SHARED} (set GRAPHREC_DATA)")
    return SHARED
