"""The click-log protocol on Spark: the SQL scripts of :mod:`graphrec.datasets.sql` run by
Spark SQL, for logs beyond one machine.

DuckDB preprocesses logs of 10^8 clicks on one machine (:mod:`graphrec.datasets.duck`).
Beyond that, the same statements run on a Spark cluster: read the log with Spark,
give it the columns ``checks.sql`` expects, and call :func:`from_clicks`::

    from pyspark.sql import SparkSession, functions as F
    from graphrec.datasets.spark import from_clicks

    spark = SparkSession.builder.getOrCreate()
    log = spark.read.csv("s3://bucket/clicks/*.csv", header=True)
    clicks = log.select(
        F.monotonically_increasing_id().alias("rid"),   # increases in file order
        F.col("session_id").alias("grp"),
        F.col("item_id").cast("long").alias("item"),    # or keep text ids as strings
        F.col("timestamp").cast("double").alias("t"),   # seconds since the epoch
        F.lit(None).cast("string").alias("usr"),
    )
    stats = from_clicks(spark, clicks, "out/shop")      # the folder load_dataset reads

``rid`` only orders the rows (file order breaks ties of time), so Spark's
``monotonically_increasing_id`` serves. Parsing, checking and typing the raw
columns is Spark's part here (``graphrec preprocess clicks`` does it on DuckDB
or pandas, with messages naming file, line and column); the protocol, its counts
and its output files are the same as :func:`graphrec.datasets.from_click_log`'s.
The statements are also written out by ``graphrec preprocess clicks ... --sql
FILE`` for ``spark-sql -f`` and other engines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from graphrec.datasets import sql as protocol_sql


def from_clicks(
    spark: Any,
    clicks: Any,
    out_dir: str | os.PathLike,
    *,
    mode: str = "session",
    min_item_support: int = 5,
    min_session_length: int = 2,
    test_days: float | None = 7,
    test_fraction: float | None = None,
    duplicates: str = "keep",
    unsorted: str = "sort",
    has_time: bool = True,
    name: str | None = None,
    source: str = "spark",
    context_cols: list[str] | None = None,
    time_context: list[str] | None = None,
) -> dict[str, Any]:
    """Run the click-log protocol on a Spark DataFrame and write a click-log folder.

    Args:
        spark: the ``SparkSession``.
        clicks: a DataFrame with the columns of ``checks.sql``: ``rid`` (long,
            increasing in file order), ``grp`` (the session, or the user in
            sequential mode), ``item`` (long or string), ``t`` (double seconds),
            ``usr`` (long, string, or a null string column).
        out_dir: the folder to write (as :func:`~graphrec.datasets.from_click_log`).
        mode: ``"session"`` or ``"sequential"``.
        min_item_support: as for :func:`~graphrec.datasets.from_click_log`.
        min_session_length: as there.
        test_days: as there.
        test_fraction: as there.
        duplicates: as there.
        unsorted: as there.
        has_time: ``False`` when ``t`` is 0 everywhere (file order; sequential).
        name: the dataset's label (default: the folder's name).
        source: what ``meta.json`` names as the source.
        context_cols: columns of ``clicks`` holding a context field each (read
            as text; ``NULL``, empty or ``"null"`` ... is unknown), as for
            :func:`~graphrec.datasets.from_click_log`.
        time_context: ``"hour"`` and/or ``"weekday"`` of ``t`` (UTC).

    Returns:
        The counts of every step, those of :func:`~graphrec.datasets.from_click_log`.
    """
    from graphrec.datasets import clicklog as cl
    from graphrec.datasets import duck

    if mode not in cl.MODES:
        raise ValueError(f"mode must be one of {cl.MODES}, got {mode!r}")
    if test_fraction is not None:
        test_days = None
    types = {f.name: f.dataType.simpleString() for f in clicks.schema.fields}
    missing = [c for c in ("rid", "grp", "item", "t", "usr") if c not in types]
    if missing:
        raise ValueError(f"the clicks DataFrame lacks column(s) {missing} (see checks.sql)")
    item_type = "str" if types["item"] == "string" else "int"
    users = mode == "sequential" or clicks.filter("usr IS NOT NULL").limit(1).count() > 0
    user_type = ("str" if types["usr"] == "string" else "int") if users else None
    runner = _SparkRunner(spark)
    meta = cl._options(
        out_dir, name, mode, "grp" if mode == "session" else None, "item",
        "t" if has_time else None, "usr" if users else None,
        min_item_support=min_item_support, min_session_length=min_session_length,
        test_days=test_days, test_fraction=test_fraction, duplicates=duplicates,
        unsorted=unsorted, time_format=None, time_unit="s",
    )  # fmt: skip
    from graphrec.datasets import context as ctx_files

    context_cols, time_context = ctx_files.check_options(
        context_cols, time_context, "t" if has_time else None, ("rid", "grp", "item", "t", "usr")
    )
    missing = [c for c in context_cols if c not in types]
    if missing:
        raise ValueError(f"the clicks DataFrame lacks the context column(s) {missing}")
    if context_cols or time_context:
        meta["context"] = {"columns": context_cols, "time": time_context}
    clicks = clicks.selectExpr("*", *(_context_text(c) for c in context_cols))
    clicks.createOrReplaceTempView("clicks")
    sql = protocol_sql.click_log_script(mode, meta["options"], has_time)
    for _, statement in protocol_sql.statements(sql):
        spark.sql(statement)
    for view in _CACHED[mode]:  # computed once, on first use, by every query after
        spark.catalog.cacheTable(view)

    stats: dict[str, Any] = {"rows": int(runner.one("SELECT count(*) AS n FROM clicks")["n"])}
    where = _RowWhere(source)
    duck._report_checks(runner.one("SELECT * FROM check_stats"), stats, where, source, meta)
    meta = meta | {"source": source, "item_id_type": item_type, "user_id_type": user_type}
    with cl._staged(Path(out_dir)) as out:
        duck.write_outputs(runner, out, meta, stats, source)
        if context_cols or time_context:
            script = protocol_sql.context_script(context_cols, time_context)
            for _, statement in protocol_sql.statements(script):
                spark.sql(statement)
            spark.catalog.cacheTable("click_context")
            ctx_files.write_from_engine(runner, out, mode, context_cols, time_context)
        cl.write_meta(out, meta, stats)
    return cl._with_field_stats(stats, Path(out_dir), {})


def _context_text(column: str) -> str:
    """A context column as text, NULL where it is missing (Spark SQL)."""
    from graphrec.datasets.clicklog import _MISSING

    text = f"trim(CAST(`{column}` AS STRING))"
    missing = ", ".join("'" + v + "'" for v in sorted(_MISSING))
    unknown = f"`{column}` IS NULL OR {text} IN ({missing})"
    return f"CASE WHEN {unknown} THEN NULL ELSE {text} END AS ctx_{column}"


#: the views that later steps read more than once
_CACHED = {
    "session": ("kept", "p3", "ranked", "item_ids", "train_out", "test_known", "test_out"),
    "sequential": ("kept", "supported", "item_ids", "user_ids", "sequence_out"),
}


class _SparkRunner:
    """What the protocol's count-keeping needs of an engine: ``one`` and ``rows``."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def one(self, query: str, params: list | None = None) -> dict[str, Any]:
        rows = self.spark.sql(query).collect()
        return rows[0].asDict() if rows else {}

    def rows(self, query: str, params: list | None = None) -> list[tuple]:
        return [tuple(r) for r in self.spark.sql(query).collect()]

    def copy_lines(self, query: str, path: Path) -> None:
        """The one text column of ``query``, a line per row."""
        with open(path, "w") as f:
            for row in self.spark.sql(query).toLocalIterator():
                f.write(f"{row[0]}\n")

    def write_sessions(self, part: str, path: Path, first_rank: int = 1) -> None:
        """One line per session of ``{part}_out`` (rank order): its item ids in click order."""
        query = (
            f"SELECT rank, id FROM {part}_out WHERE rank >= {int(first_rank)} ORDER BY rank, pos"
        )
        with open(path, "w") as f:
            current, items = None, []
            for row in self.spark.sql(query).toLocalIterator():
                if row["rank"] != current and current is not None:
                    f.write(" ".join(items) + "\n")
                    items = []
                current = row["rank"]
                items.append(str(row["id"]))
            if current is not None:
                f.write(" ".join(items) + "\n")

    def materialize(self, name: str, query: str) -> None:
        """A cached view ``name`` of ``query``'s rows (computed once, on first use)."""
        self.spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {query}")
        self.spark.catalog.cacheTable(name)

    def write_context(self, query: str, path: Path, names: list[str], grouped: bool) -> None:
        """A context file from ``query``'s rows ``(rank, pos, f_<name> ...)``: a line per
        rank (``grouped``: each field's ids in ``pos`` order) or per row."""
        rows = self.spark.sql(f"SELECT * FROM ({query}) AS q ORDER BY rank, pos")
        with open(path, "w", encoding="utf-8") as f:
            f.write("# " + "\t".join(names) + "\n")
            current, cells = None, [[] for _ in names]
            for row in rows.toLocalIterator():
                if not grouped:
                    f.write("\t".join(str(row[f"f_{n}"]) for n in names) + "\n")
                    continue
                if row["rank"] != current and current is not None:
                    f.write("\t".join(" ".join(c) for c in cells) + "\n")
                    cells = [[] for _ in names]
                current = row["rank"]
                for c, n in zip(cells, names, strict=True):
                    c.append(str(row[f"f_{n}"]))
            if grouped and current is not None:
                f.write("\t".join(" ".join(c) for c in cells) + "\n")

    def write_labels(self, path: Path, table: str, column: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write("# id\toriginal\n")
            for row in self.spark.sql(
                f"SELECT id, {column} AS v FROM {table} ORDER BY id"
            ).toLocalIterator():
                f.write(f"{row['id']}\t{row['v']}\n")


class _RowWhere:
    """Rows of a Spark DataFrame are named by their ``rid`` (no file line is known)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, rid: int) -> str:
        return f"{self.source}, rid {rid}"
