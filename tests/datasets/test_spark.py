"""The protocol's SQL on Spark (local mode): the same folder as the pandas path.

Runs only where pyspark and Java are installed (``pip install "graphrec[spark]"``),
and is slow (a JVM starts): ``python -m pytest -m slow tests/datasets/test_spark.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from graphrec.datasets import from_click_log

from .test_duck import _log

pytestmark = pytest.mark.slow

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("Spark needs Java", allow_module_level=True)


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("graphrec-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _clicks(spark, path: Path, user: bool):
    from pyspark.sql import functions as F

    log = spark.read.csv(str(path), header=True)
    return log.select(
        F.monotonically_increasing_id().alias("rid"),
        F.col("session_id").alias("grp"),
        F.col("item_id").cast("long").alias("item"),
        F.col("timestamp").cast("double").alias("t"),
        (F.col("user").cast("long") if user else F.lit(None).cast("string")).alias("usr"),
    )


@pytest.mark.parametrize(
    "options", [{}, {"user": "user"}, {"duplicates": "drop", "test_fraction": 0.25}]
)
def test_spark_writes_what_pandas_writes(spark, tmp_path: Path, options: dict) -> None:
    from graphrec.datasets.spark import from_clicks

    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    expected = from_click_log(path, tmp_path / "pandas" / "out", engine="pandas", **options)
    kwargs = {k: v for k, v in options.items() if k != "user"}
    stats = from_clicks(spark, _clicks(spark, path, "user" in options),
                        tmp_path / "spark" / "out", **kwargs)  # fmt: skip
    assert stats == expected
    names = ["train_sessions.txt", "test_sessions.txt", "items.tsv"]
    if "user" in options:
        names += ["users.tsv", "train_session_users.txt", "test_session_users.txt"]
    for name in names:
        a = (tmp_path / "pandas" / "out" / name).read_bytes()
        assert a == (tmp_path / "spark" / "out" / name).read_bytes(), name


@pytest.mark.parametrize("mode", ["session", "sequential"])
def test_spark_writes_the_context_pandas_writes(spark, tmp_path: Path, mode: str) -> None:
    from pyspark.sql import functions as F

    from graphrec.datasets.spark import from_clicks

    frame = _log()
    frame["device"] = np.where(
        frame["item_id"] % 3 == 0, "", "d" + (frame["item_id"] % 4).astype(str)
    )
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    kwargs = {"context_cols": ["device"], "time_context": ["hour", "weekday"]}
    if mode == "sequential":
        expected = from_click_log(path, tmp_path / "pandas" / "out", engine="pandas",
                                  session=None, user="user", **kwargs)  # fmt: skip
    else:
        expected = from_click_log(path, tmp_path / "pandas" / "out", engine="pandas", **kwargs)
    log = spark.read.csv(str(path), header=True)
    group = "user" if mode == "sequential" else "session_id"
    clicks = log.select(
        F.monotonically_increasing_id().alias("rid"),
        F.col(group).alias("grp"),
        F.col("item_id").cast("long").alias("item"),
        F.col("timestamp").cast("double").alias("t"),
        (F.col("user").cast("long") if mode == "sequential" else F.lit(None).cast("string")).alias(
            "usr"
        ),
        F.col("device"),
    )
    stats = from_clicks(spark, clicks, tmp_path / "spark" / "out", mode=mode, **kwargs)
    assert stats == expected
    names = ["context.tsv"] if mode == "sequential" else ["train_context.tsv", "test_context.tsv"]
    for name in [*names, "fields.json"]:
        a = (tmp_path / "pandas" / "out" / name).read_bytes()
        assert a == (tmp_path / "spark" / "out" / name).read_bytes(), name
