"""Out-of-core preprocessing on DuckDB: the same protocols and files as the pandas path.

A log of 10^8 clicks does not fit in pandas on a 24 GB machine (about 44 GB);
DuckDB reads CSV and Parquet in parallel and spills to disk under a memory
limit. This module reads and checks the log in SQL (every check and message of
the pandas path, with its file, line and column), runs the protocol scripts of
:mod:`graphrec.datasets.sql`, and writes the output files with ``COPY``. The
folders written are identical, byte for byte, to those of the pandas path.

DuckDB is an optional extra (``pip install "graphrec[scale]"``); without it,
``engine="auto"`` uses pandas.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec.datasets import sql as protocol_sql
from graphrec.datasets.io import decode, log

ENGINES = ("auto", "pandas", "duckdb")
#: the share of the machine's memory DuckDB may use by default
MEMORY_SHARE = 0.25
#: what ``str.strip()`` removes: Python's whitespace
_WHITESPACE = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
#: one of those characters, for RE2
_EDGE = "[" + "".join(rf"\x{{{ord(c):x}}}" for c in _WHITESPACE) + "]"
#: ISO 8601 times that DuckDB's TIMESTAMPTZ cast reads as pandas does (other times: pandas)
_ISO_PLAIN = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?: ?(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?))?)?"
)
_NO_NULL = "\x01graphrec: no null string\x01"
_CODECS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1",
           "iso-8859-1": "latin-1"}  # fmt: skip


def available() -> bool:
    """Whether DuckDB can be imported."""
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False
    return True


def default_memory_limit(source_bytes: int | None = None) -> str:
    """DuckDB's memory limit unless one is given: four times the size of the log, at
    least 1 GiB, at most :data:`MEMORY_SHARE` of the machine's physical memory.

    DuckDB fills the memory it may use with its buffers; a limit near what the data
    needs keeps a small log's run small (a 10^7-click CSV of 0.3 GB: 1.2 GiB, 1.7 GiB
    peak) while a large one spills to disk beyond the share."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 16 * 2**30
    limit = total * MEMORY_SHARE
    if source_bytes is not None:
        limit = min(limit, max(2**30, 4 * source_bytes))
    return f"{max(1, int(limit / 2**20))}MiB"


def parse_memory_limit(text: str) -> str:
    """``8GB``, ``500MB``, ``0.3`` (a share of the machine's memory): DuckDB's form."""
    value = str(text).strip()
    try:
        share = float(value)
    except ValueError:
        import re

        if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?\s*[KMGT]i?B", value, re.IGNORECASE):
            raise ValueError(
                f"memory limit {text!r}: give a size (8GB, 500MB) or a share of the "
                "machine's memory (0.25)"
            ) from None
        return value.replace(" ", "")
    if not 0 < share < 1:
        raise ValueError(f"memory limit {text!r}: a share must lie in (0, 1)")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(1, int(total * share / 2**20))}MiB"


def reads_parquet_columns(path: Path, ids: tuple, time: str | None) -> bool:
    """Whether this engine reads the Parquet file's id and time columns as the pandas
    path does (text, integer or float ids; numeric, timestamp or date times). A file
    it cannot open, or a missing column, is left to the engine's own error."""
    import duckdb

    try:
        rows = (
            duckdb.connect()
            .execute(f"DESCRIBE SELECT * FROM read_parquet('{_quote(path)}')")
            .fetchall()
        )
    except duckdb.Error:
        return True
    types = {row[0]: str(row[1]).upper() for row in rows}
    for column in ids:
        kind = types.get(column, "VARCHAR")
        if not (kind == "VARCHAR" or _is_integer_type(kind) or _is_float_type(kind)):
            return False
    if time is not None:
        kind = types.get(time, "VARCHAR")
        timeish = kind.startswith("TIMESTAMP") or kind == "DATE"
        if not (kind == "VARCHAR" or timeish or _is_integer_type(kind) or _is_float_type(kind)):
            return False
    return True


def codec(encoding: str) -> str | None:
    """DuckDB's name of ``encoding``, or ``None`` when its CSV reader lacks it."""
    return _CODECS.get(encoding.lower().replace("_", "-"))


class Engine:
    """A DuckDB connection with a memory limit, a spill folder, and a progress bar per stage.

    Args:
        spill_dir: where DuckDB writes what does not fit in ``memory_limit``.
        memory_limit (str, optional): DuckDB's limit (default:
            :func:`default_memory_limit` of ``source_bytes``).
        threads (int, optional): DuckDB's threads (default: all CPUs).
        progress (bool): a bar per stage on standard error (tqdm).
        source_bytes (int, optional): the size of the input, for the default limit.
    """

    def __init__(
        self,
        spill_dir: str | os.PathLike,
        memory_limit: str | None = None,
        threads: int | None = None,
        progress: bool = False,
        source_bytes: int | None = None,
    ) -> None:
        try:
            import duckdb
        except ImportError:
            raise ImportError(
                'the duckdb engine needs DuckDB: pip install "graphrec[scale]" '
                "(or engine='pandas', --engine pandas)"
            ) from None
        self.duckdb = duckdb
        self.memory_limit = memory_limit or default_memory_limit(source_bytes)
        config: dict[str, Any] = {
            "memory_limit": self.memory_limit,
            "temp_directory": str(spill_dir),
            "preserve_insertion_order": True,
        }
        if threads:
            config["threads"] = int(threads)
        self.con = duckdb.connect(":memory:", config=config)
        self.con.execute("SET TimeZone = 'UTC'")
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._bar = None

    def close(self) -> None:
        self._close_bar()
        self.con.close()

    def execute(
        self, statement: str, stage: str, params: list | None = None, part: tuple = (0, 1)
    ) -> list[tuple]:
        """Run ``statement``, showing DuckDB's progress on it under ``stage``; its rows.

        ``part``: the statement is number ``part[0]`` of the ``part[1]`` that make
        the stage (one bar per stage, which never goes back)."""
        start = time.perf_counter()
        if not self.progress:
            rows = self._run(statement, params)
        else:
            rows = self._with_bar(statement, stage, params, part)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
        return rows

    def _run(self, statement: str, params: list | None) -> list[tuple]:
        try:
            cursor = self.con.execute(statement, params or [])
            return cursor.fetchall() if cursor.description else []
        except self.duckdb.OutOfMemoryException as e:
            raise MemoryError(
                f"DuckDB ran out of memory under memory_limit={self.memory_limit} "
                f"({str(e).splitlines()[0]}); raise it (--memory-limit), or free the "
                "disk where it spills"
            ) from None

    def _stage_bar(self, stage: str):
        """The bar of ``stage``: the open one, or a new one (closing the previous)."""
        from tqdm import tqdm

        if self._bar is not None and self._bar.desc.strip() != stage:
            self._close_bar()
        if self._bar is None:
            shape = "{desc:>26}: {percentage:3.0f}%|{bar}| {elapsed}"
            self._bar = tqdm(total=100, desc=stage, leave=True, file=sys.stderr, bar_format=shape)
        return self._bar

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.n = 100
            self._bar.close()
            self._bar = None

    def _with_bar(self, statement: str, stage: str, params: list | None, part) -> list[tuple]:
        failure: list[BaseException] = []
        rows: list[list[tuple]] = []

        def work() -> None:
            try:
                rows.append(self._run(statement, params))
            except BaseException as e:  # re-raised in the calling thread
                failure.append(e)

        bar = self._stage_bar(stage)
        index, count = part
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            try:
                done = self.con.query_progress()
            except Exception:
                done = -1
            if done is not None and done >= 0:
                bar.n = max(bar.n, min(100, int((100 * index + done) / count)))
                bar.refresh()
        if failure:
            self._close_bar()
            raise failure[0]
        bar.n = max(bar.n, int(100 * (index + 1) / count))
        bar.refresh()
        return rows[0]

    def run_script(self, sql: str) -> None:
        """Every statement of a protocol script, each view made a table (computed once)."""
        steps = protocol_sql.statements(sql)
        count = {stage: sum(1 for s, _ in steps if s == stage) for stage, _ in steps}
        seen: dict[str, int] = {}
        for stage, statement in steps:
            index = seen.get(stage, 0)
            seen[stage] = index + 1
            self.execute(protocol_sql.as_table(statement), stage, part=(index, count[stage]))

    def one(self, query: str, params: list | None = None) -> dict[str, Any]:
        """The first row of ``query`` as a dict."""
        cursor = self.con.execute(query, params or [])
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        return dict(zip(names, row, strict=True)) if row is not None else {}

    def rows(self, query: str, params: list | None = None) -> list[tuple]:
        return self.con.execute(query, params or []).fetchall()

    def write_sessions(self, part: str, path: Path, first_rank: int = 1) -> None:
        """``{part}_out`` as one line per session (rank order, from ``first_rank``): its
        new item ids in click order."""
        self.copy_lines(
            f"SELECT string_agg(CAST(id AS VARCHAR), ' ' ORDER BY pos) FROM {part}_out "
            f"WHERE rank >= {int(first_rank)} GROUP BY rank ORDER BY rank",
            path,
        )

    def materialize(self, name: str, query: str) -> None:
        """A temporary table ``name`` of ``query``'s rows (computed once)."""
        self.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}", f"table {name}")

    def write_context(self, query: str, path: Path, names: list[str], grouped: bool) -> None:
        """A context file (:mod:`graphrec.datasets.context`) from ``query``'s rows
        ``(rank, pos, f_<name> ...)``: a line per rank (``grouped``) or per row."""
        if grouped:
            cells = " || chr(9) || ".join(
                f"string_agg(CAST(f_{n} AS VARCHAR), ' ' ORDER BY pos)" for n in names
            )
            body = f"SELECT rank AS k, {cells} AS line FROM ({query}) AS q GROUP BY rank"
        else:
            cells = " || chr(9) || ".join(f"CAST(f_{n} AS VARCHAR)" for n in names)
            body = f"SELECT rank AS k, pos AS p, {cells} AS line FROM ({query}) AS q"
        header = "# " + "\t".join(names)
        order = "k" if grouped else "k, p"
        head = f"SELECT 0 AS k, {'' if grouped else '0 AS p, '}'{header}' AS line"
        self.copy_lines(
            f"SELECT line FROM ({head} UNION ALL {body}) AS u ORDER BY {order}",
            path,
        )

    def write_labels(self, path: Path, table: str, column: str) -> None:
        """``items.tsv``/``users.tsv``: ``id<TAB>original`` in id order, under a header."""
        cursor = self.con.execute(f"SELECT id, {column} FROM {table} ORDER BY id")
        with open(path, "w", encoding="utf-8") as f:
            f.write("# id\toriginal\n")
            while chunk := cursor.fetchmany(1 << 16):
                f.write("".join(f"{i}\t{v}\n" for i, v in chunk))

    def copy_lines(self, query: str, path: Path) -> None:
        """Write the one text column of ``query`` to ``path``, a line per row, as is."""
        self.execute(
            f"COPY ({query}) TO '{_quote(path)}' "
            "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')",
            f"write {path.name}",
        )
        if not path.exists():  # no rows: DuckDB may write nothing
            path.write_text("")


def _quote(path: str | os.PathLike) -> str:
    return str(path).replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ----------------------------------------------------------------------------------------
# reading and checking a click log


def header_names(first_line: str, sep: str) -> list[str]:
    """The column names of a header line as pandas reads them (quotes removed,
    repeated names numbered ``x``, ``x.1``)."""
    names = next(csv.reader([first_line], delimiter=sep, quotechar='"'))
    seen: dict[str, int] = {}
    result = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        result.append(name)
    return result


class ClickLogReader:
    """Reads a CSV/TSV/Parquet click log into the table ``clicks`` the SQL protocol
    expects, with every check of the pandas path and the same messages.

    The raw rows are first stored as a table (``raw``: text columns for a text
    file, typed columns for Parquet), numbered in file order; the checks are
    aggregates over it; ``clicks`` holds the typed, stripped values.
    """

    def __init__(self, engine: Engine, path: Path, where, *, parquet: bool) -> None:
        self.engine, self.path, self.where, self.parquet = engine, path, where, parquet
        self.types: dict[str, str] = {}
        self._firsts: dict[str, int | None] = {}  # condition -> first row where it holds
        self._alls: dict[str, bool] = {}  # condition -> whether every row meets it
        self._stripped: set[str] | None = None  # text columns with values to strip
        self.pandas_na = False  # whether pandas reads this file with its default NA values

    def profile(self, ids: list[str], times: list[str], text_ids: bool) -> None:
        """Every check of :meth:`id_column` and :meth:`time_column` in one pass over the
        rows (the checks then read the answers; only an error needs another query)."""
        text_columns = [c for c in dict.fromkeys([*ids, *times]) if self.types[c] == "VARCHAR"]
        if text_columns:  # which columns need str.strip() (slow in SQL): those with spaces
            edge = _EDGE
            found = self.engine.execute(
                "SELECT "
                + ", ".join(
                    f"bool_or(regexp_matches({_ident(c)}, '^{edge}|{edge}$'))" for c in text_columns
                )
                + " FROM raw",
                "check values",
            )[0]
            self._stripped = {c for c, spaced in zip(text_columns, found, strict=True) if spaced}
        firsts: list[str] = []
        alls: list[str] = []
        for column in dict.fromkeys(ids):
            if self.types[column] != "VARCHAR":
                continue
            firsts += [self._missing(column), self._tab(column)]
            if not text_ids:
                alls.append(self._canonical(column))
        for column in times:
            if self.types[column] == "VARCHAR":
                number = self._number(column)
                firsts += [self._missing(column), f"({number}) IS NOT NULL", f"({number}) IS NULL"]
        if not firsts:
            return
        found = self.engine.execute(
            "SELECT "
            + ", ".join(
                [f"min(CASE WHEN {c} THEN rowid END)" for c in firsts]
                + [f"bool_and(coalesce({c}, FALSE))" for c in alls]
            )
            + " FROM raw",
            "check values",
        )[0]
        for i, value in enumerate(found):
            if i < len(firsts):
                self._firsts[firsts[i]] = None if value is None else int(value)
            else:
                self._alls[alls[i - len(firsts)]] = True if value is None else bool(value)

    def spaced(self, columns: list[str]) -> set[str]:
        """The text columns among ``columns`` with a value to ``str.strip()`` (one pass)."""
        text = [c for c in columns if self.types[c] == "VARCHAR"]
        if not text:
            return set()
        found = self.engine.execute(
            "SELECT "
            + ", ".join(f"bool_or(regexp_matches({_ident(c)}, '^{_EDGE}|{_EDGE}$'))" for c in text)
            + " FROM raw",
            "check values",
        )[0]
        return {c for c, spaced in zip(text, found, strict=True) if spaced}

    def _missing(self, column: str) -> str:
        return f"{_ident(column)} IS NULL OR {self._text(column)} IN ({_missing_list()})"

    def _tab(self, column: str) -> str:
        text = self._text(column)
        return f"contains({text}, chr(9)) OR contains({text}, chr(13)) OR contains({text}, chr(10))"

    def _canonical(self, column: str) -> str:
        """Integers written as Python writes them (the cast's round trip): ``int`` ids."""
        text = self._text(column)
        return f"CAST(TRY_CAST({text} AS BIGINT) AS VARCHAR) = {text}"

    def _number(self, column: str) -> str:
        """The value as a number, as ``pd.to_numeric`` reads it (no ``1_000``)."""
        text = self._text(column)
        return f"CASE WHEN contains({text}, '_') THEN NULL ELSE TRY_CAST({text} AS DOUBLE) END"

    def _all(self, condition: str) -> bool:
        if condition not in self._alls:
            found = self.engine.rows(f"SELECT bool_and(coalesce({condition}, FALSE)) FROM raw")
            self._alls[condition] = True if found[0][0] is None else bool(found[0][0])
        return self._alls[condition]

    # -- the raw rows -------------------------------------------------------------------
    def load_text(self, sep: str, names: list[str], encoding: str, header: bool = True) -> None:
        duck_codec = codec(encoding)
        if duck_codec is None:
            raise ValueError(f"the duckdb engine cannot read {encoding!r}; use engine='pandas'")
        columns = ", ".join(f"'{_quote(n)}': 'VARCHAR'" for n in names)
        # an empty field is '' (pandas' keep_default_na=False); only a short line's
        # missing fields are NULL, as pandas' NaN
        options = (
            f"header = {str(header).lower()}, null_padding = true, nullstr = '{_NO_NULL}', "
            f"delim = ?, quote = '\"', escape = '\"', columns = {{{columns}}}, "
            f"encoding = '{duck_codec}', strict_mode = true, auto_detect = false"
        )
        read = f"CREATE TEMP TABLE raw AS SELECT * FROM read_csv('{_quote(self.path)}', {options}"
        try:
            try:
                self.engine.execute(read + ")", "read", [sep])
            except self.engine.duckdb.Error as e:
                if "quoted new lines" not in str(e):
                    raise
                # a quoted field spans lines: DuckDB reads such a file with one thread
                self.engine.execute(read + ", parallel = false)", "read", [sep])
        except self.engine.duckdb.Error as e:
            self._explain_read_error(e, sep, encoding, len(names))
            raise
        self.types = {name: "VARCHAR" for name in names}

    def _explain_read_error(self, error, sep: str, encoding: str, columns: int) -> None:
        """Turn DuckDB's CSV error into the message of the pandas path."""
        text = str(error)
        if "Invalid unicode" in text or "byte sequence" in text:
            _decode_by_chunks(self.path, encoding)  # raises, naming the line and the byte
        if "Expected Number of Columns" in text or "columns" in text.lower():
            found = _first_long_line(self.path, sep, encoding, columns)
            if found is not None:
                line, saw = found
                raise ValueError(
                    f"{self.path}, line {line}: {saw} fields where the header has {columns} "
                    f"(separator {sep!r})"
                ) from None
        first = text.splitlines()[0] if text else type(error).__name__
        raise ValueError(
            f"{self.path}: cannot be read as {sep!r}-separated text ({first})"
        ) from None

    def load_parquet(self) -> list[str]:
        try:
            self.engine.execute(
                f"CREATE TEMP TABLE raw AS SELECT * FROM read_parquet('{_quote(self.path)}')",
                "read",
            )
        except self.engine.duckdb.Error as e:
            first = str(e).splitlines()[0]
            raise ValueError(f"{self.path}: cannot be read as Parquet ({first})") from None
        described = self.engine.rows("DESCRIBE raw")
        self.types = {row[0]: str(row[1]).upper() for row in described}
        return list(self.types)

    def count(self) -> int:
        return int(self.engine.rows("SELECT count(*) FROM raw")[0][0])

    # -- ids ----------------------------------------------------------------------------
    def _text(self, column: str) -> str:
        """The column's values as ``str.strip()`` leaves them."""
        if self._stripped is not None and column not in self._stripped:
            return _ident(column)
        return f"trim({_ident(column)}, '{_WHITESPACE}')"

    def id_column(self, column: str, text_ids: bool) -> tuple[str, str]:
        """The SQL expression of ``column`` as ids (BIGINT or text), and the id type.

        Raises as :func:`graphrec.datasets.clicklog._ids` does, naming the same row.
        """
        kind = self.types[column]
        col = _ident(column)
        if not text_ids and _is_integer_type(kind):
            self._refuse_missing(column, f"{col} IS NULL")
            return f"CAST({col} AS BIGINT)", "int"
        if not text_ids and _is_float_type(kind):
            self._refuse_missing(column, f"{col} IS NULL OR isnan({col})")
            bad = self._first(f"{col} <> round({col})")
            if bad is not None:
                value = self.engine.rows(f"SELECT {col} FROM raw WHERE rowid = ?", [bad])[0][0]
                raise ValueError(f"{self.where(bad)}: column {column!r} holds {value!r}, not an id")
            return f"CAST({col} AS BIGINT)", "int"
        if kind != "VARCHAR":
            raise ValueError(
                f"{self.path}: column {column!r} is of type {kind}, which the duckdb engine "
                "does not read as ids; use engine='pandas'"
            )
        text = self._text(column)
        self._refuse_missing(column, self._missing(column))
        bad = self._first(self._tab(column))
        if bad is not None:
            raise ValueError(f"{self.where(bad)}: column {column!r} holds a tab or a line break")
        if text_ids:
            return text, "str"
        # pandas: int64 when every id is a plain integer (0|-?[1-9][0-9]*) that fits
        if self._all(self._canonical(column)):
            return f"CAST({text} AS BIGINT)", "int"
        if self._all(f"regexp_full_match({text}, '0|-?[1-9][0-9]*')"):
            bad = self._first(f"length({text}) > 18 AND TRY_CAST({text} AS BIGINT) IS NULL")
            if bad is not None:
                value = self.engine.rows(f"SELECT {text} FROM raw WHERE rowid = ?", [bad])[0][0]
                raise ValueError(
                    f"{self.where(bad)}: column {column!r}: the integer id {value} does not "
                    "fit in 64 bits, while every other id of the column is an integer; pass "
                    "text_ids=True (--text-ids) to keep the ids as text"
                )
            return f"CAST({text} AS BIGINT)", "int"
        return text, "str"

    def _first(self, condition: str) -> int | None:
        """The first row (file order) where ``condition`` holds."""
        if condition not in self._firsts:
            found = self.engine.rows(f"SELECT min(CASE WHEN {condition} THEN rowid END) FROM raw")
            self._firsts[condition] = None if found[0][0] is None else int(found[0][0])
        return self._firsts[condition]

    def _refuse_missing(self, column: str, condition: str) -> None:
        bad = self._first(condition)
        if bad is not None:
            value = self.engine.rows(f"SELECT {_ident(column)} FROM raw WHERE rowid = ?", [bad])
            shown = value[0][0]
            if shown is None:  # pandas: '' for a short line's field, NaN for a Parquet null
                shown = np.nan if self.parquet else ""
            raise ValueError(self.where.empty(bad, column, shown))

    # -- times --------------------------------------------------------------------------
    def time_column(self, column: str, time_format: str | None, unit: str) -> str:
        """The SQL expression of ``column`` as seconds since the epoch (DOUBLE),
        parsed as :func:`graphrec.datasets.clicklog._times` parses it."""
        kind = self.types[column]
        col = _ident(column)
        if kind.startswith("TIMESTAMP") or kind == "DATE":
            self._refuse_missing(column, f"{col} IS NULL")
            if kind == "DATE":
                return _seconds_of_ns(f"epoch_ns(CAST({col} AS TIMESTAMP))")
            return _seconds_of_ns(f"epoch_ns({col})")
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
        if kind != "VARCHAR":
            if not (_is_integer_type(kind) or _is_float_type(kind)):
                raise ValueError(
                    f"{self.path}: column {column!r} is of type {kind}, which the duckdb "
                    "engine does not read as times; use engine='pandas'"
                )
            self._refuse_missing(column, f"{col} IS NULL OR isnan(CAST({col} AS DOUBLE))")
            return f"CAST({col} AS DOUBLE) * CAST('{scale!r}' AS DOUBLE)"
        text = self._text(column)
        self._refuse_missing(column, self._missing(column))
        if time_format is None:
            number = self._number(column)
            first_number = self._first(f"({number}) IS NOT NULL")
            other = self._first(f"({number}) IS NULL")
            if other is None:
                return f"({number}) * CAST('{scale!r}' AS DOUBLE)"
            if first_number is not None:
                self._refuse_mixed_numbers(column, first_number, other, unit)
        return self._parsed_times(column, text, time_format)

    def _value(self, column: str, row: int) -> Any:
        return self.engine.rows(f"SELECT {_ident(column)} FROM raw WHERE rowid = ?", [row])[0][0]

    def _refuse_mixed_numbers(self, column: str, number: int, other: int, unit: str) -> None:
        other_value = self._value(column, other)
        parsed = pd.to_datetime(pd.Series([other_value]), format="ISO8601", errors="coerce")
        if parsed.isna().all():
            raise ValueError(
                f"{self.where(other)}: column {column!r}: cannot parse {other_value!r} as a "
                f"time (the column's other values are numbers: {unit} since the epoch)"
            )
        raise ValueError(
            f"{column!r} mixes numbers ({self.where(number)}: {self._value(column, number)!r}) "
            f"and other times ({self.where(other)}: {other_value!r}); use one format"
        )

    def _parsed_times(self, column: str, text: str, time_format: str | None) -> str:
        """Text times: ISO 8601 through DuckDB's cast where it reads them as pandas does,
        every other distinct value through pandas (``time_format`` always), in chunks."""
        from graphrec.datasets.clicklog import _TIME_ZONE

        if time_format is None:
            plain = f"regexp_full_match({text}, '{_ISO_PLAIN}')"
            duck_ns = f"epoch_ns(TRY_CAST({text} AS TIMESTAMPTZ))"
        else:
            plain, duck_ns = "FALSE", "NULL"
        ns, bad = self.mapped_ns(text, plain, duck_ns, time_format or "ISO8601", utc=True)
        if bad is not None:
            expected = f"the format {time_format!r}" if time_format else "an ISO 8601 time"
            raise ValueError(
                f"{self.where(int(bad))}: column {column!r}: cannot parse "
                f"{self._value(column, int(bad))!r} as {expected} (pass time_format= / "
                "--time-format)"
            )
        if time_format is None:
            zoned = self.engine.one(
                f"SELECT min(CASE WHEN regexp_full_match({text}, '{_TIME_ZONE}') THEN rowid END)"
                f" AS a, min(CASE WHEN NOT regexp_full_match({text}, '{_TIME_ZONE}') THEN rowid"
                " END) AS b FROM raw"
            )
            if zoned["a"] is not None and zoned["b"] is not None:
                a, b = int(zoned["a"]), int(zoned["b"])
                raise ValueError(
                    f"{column!r} mixes times with a UTC offset ({self.where(a)}: "
                    f"{self._value(column, a)!r}) and without one ({self.where(b)}: "
                    f"{self._value(column, b)!r}); which zone the latter are in cannot be "
                    "guessed: give every time an offset, or none (then all are UTC)"
                )
        return _seconds_of_ns(ns)

    def mapped_ns(
        self, text: str, plain: str, duck_ns: str, time_format: str, utc: bool = False
    ) -> tuple[str, int | None]:
        """Times as integer nanoseconds: ``duck_ns`` (DuckDB's parse) where ``plain``
        holds and it succeeds, every other distinct value parsed by
        ``pd.to_datetime(format=time_format)`` in chunks of 2^20 (exactly what the
        pandas path reads). The SQL of the nanoseconds, and the first row (file
        order) that pandas cannot parse either."""
        con = self.engine
        self._mapped = getattr(self, "_mapped", 0) + 1
        hard, parsed = f"hard_times_{self._mapped}", f"parsed_times_{self._mapped}"
        con.execute(
            f"CREATE TEMP TABLE {hard} AS SELECT x, row_number() OVER () AS k FROM "
            f"(SELECT DISTINCT {text} AS x FROM raw WHERE NOT ({plain}) OR ({duck_ns}) IS NULL)"
            " AS q",
            "parse times",
        )
        con.execute(f"CREATE TEMP TABLE {parsed} (x VARCHAR, ns BIGINT)", "parse times")
        size, start = 1 << 20, 0
        while True:
            chunk = con.rows(f"SELECT x FROM {hard} WHERE k > ? AND k <= ?", [start, start + size])
            start += size
            if not chunk:
                break
            values = pd.Series([r[0] for r in chunk], dtype=object)
            stamp = pd.to_datetime(values, format=time_format, errors="coerce", utc=utc)
            ns = stamp.dt.as_unit("ns").astype("int64").where(stamp.notna(), None)
            frame = pd.DataFrame({"x": values, "ns": ns.astype("Int64")})
            con.con.register("parsed_chunk", frame)
            con.con.execute(f"INSERT INTO {parsed} SELECT x, ns FROM parsed_chunk")
            con.con.unregister("parsed_chunk")
        bad = con.rows(
            f"SELECT min(r.rowid) FROM raw AS r JOIN {parsed} AS p ON {text} = p.x "
            "WHERE p.ns IS NULL"
        )[0][0]
        ns = f"CASE WHEN {plain} THEN {duck_ns} END"
        if con.rows(f"SELECT count(*) FROM {parsed}")[0][0]:
            ns = f"coalesce((SELECT p.ns FROM {parsed} AS p WHERE p.x = {text}), {ns})"
        return ns, None if bad is None else int(bad)


def _seconds_of_ns(ns: str) -> str:
    """SQL of :func:`graphrec.datasets.clicklog.epoch_seconds`: whole seconds (floor)
    plus the rest divided by 10^9, from integer nanoseconds."""
    b = "1000000000"
    whole = f"(CASE WHEN ({ns}) % {b} < 0 THEN ({ns}) // {b} - 1 ELSE ({ns}) // {b} END)"
    rest = f"(({ns}) - {whole} * {b})"
    return f"(CAST({whole} AS DOUBLE) + CAST({rest} AS DOUBLE) / 1e9)"


def _context_text(column: str, strip: bool = True) -> str:
    """A context column's value as text, as ``str(value).strip()`` gives it, NULL
    where it is missing (as :func:`graphrec.datasets.context.column_ids` reads it);
    ``strip=False`` for a column without a value to strip."""
    text = f"CAST({_ident(column)} AS VARCHAR)"
    if strip:
        text = f"trim({text}, '{_WHITESPACE}')"
    missing = f"{_ident(column)} IS NULL OR {text} IN ({_missing_list()})"
    return f"CASE WHEN {missing} THEN NULL ELSE {text} END"


def _missing_list() -> str:
    from graphrec.datasets.clicklog import _MISSING

    return ", ".join("'" + v.replace("'", "''") + "'" for v in sorted(_MISSING))


def _is_integer_type(kind: str) -> bool:
    return kind in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT",
                    "UINTEGER", "UBIGINT", "HUGEINT")  # fmt: skip


def _is_float_type(kind: str) -> bool:
    return kind in ("FLOAT", "DOUBLE", "REAL") or kind.startswith("DECIMAL")


def _decode_by_chunks(path: Path, encoding: str, size: int = 1 << 26) -> None:
    """Decode ``path`` chunk by chunk (whole lines), raising at the first bad byte
    with the message of :func:`graphrec.datasets.io.decode` (file, line, column)."""
    lines_before = 0
    with open(path, "rb") as f:
        rest = b""
        while True:
            block = f.read(size)
            data = rest + block
            if not block:
                cut = len(data)
            else:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    rest = data
                    continue
            piece, rest = data[:cut], data[cut:]
            try:
                decode(piece, path, encoding) if lines_before == 0 else piece.decode(encoding)
            except UnicodeDecodeError:
                decode(b"\n" * lines_before + piece, path, encoding)
            lines_before += piece.count(b"\n")
            if not block:
                return


def _first_long_line(path: Path, sep: str, encoding: str, columns: int) -> tuple[int, int] | None:
    """The first line (1-based, as pandas counts) with more fields than the header."""
    csv.field_size_limit(sys.maxsize)  # a line of 300,000 fields is what we look for
    with open(path, newline="", encoding=encoding, errors="replace") as f:
        reader = csv.reader(f, delimiter=sep, quotechar='"')
        for fields in reader:
            if len(fields) > columns:
                return reader.line_num, len(fields)
    return None


def spill_folder(near: Path) -> tempfile.TemporaryDirectory:
    """A folder for DuckDB to spill into, beside the output (same disk)."""
    near.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".graphrec-duckdb.", dir=near)


def timed(stages: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())


# ----------------------------------------------------------------------------------------
# the protocols


def click_log(
    path: Path,
    out_dir: Path,
    meta: dict[str, Any],
    *,
    sep: str | None,
    encoding: str,
    text_ids: bool,
    memory_limit: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    finish: Any = None,
    context: tuple[list[str], list[str]] = ([], []),
) -> dict[str, Any]:
    """:func:`graphrec.datasets.from_click_log` of a file on DuckDB (``meta``: the
    checked options, as they go into ``meta.json``; ``finish``: what adds the
    side fields to the written folder; ``context``: the context columns and the
    time context fields); the same files and errors."""
    from graphrec.datasets import clicklog as cl

    if not path.is_file():
        raise FileNotFoundError(f"click log not found: {path}")
    label = str(path)
    mode, columns, options = meta["mode"], meta["columns"], meta["options"]
    session, item, time_col, user = (columns[k] for k in ("session", "item", "time", "user"))
    group_col = session if mode == "session" else user
    parquet = path.suffix.lower() in (".parquet", ".pq")
    if not parquet:
        sep, first = cl.text_layout(path, sep, encoding)
        names = header_names(first, sep)
    with (
        cl._staged(out_dir, finish) as out,
        _engine_in(out, memory_limit, threads, progress, path) as engine,
    ):
        if parquet:
            where = cl._Where(label, 0, None, encoding)
            reader = ClickLogReader(engine, path, where, parquet=True)
            names = reader.load_parquet()
        else:
            where = cl._Where(label, 2, sep, encoding)
            reader = ClickLogReader(engine, path, where, parquet=False)
            reader.load_text(sep, names, encoding)
        need = [c for c in (group_col, item, time_col, user) if c is not None]
        missing = [c for c in dict.fromkeys(need) if c not in names]
        if missing:
            raise ValueError(
                f"{label}: missing column(s) {missing}; it has {names} "
                "(name them with session=/item=/time=/user=, or --session-col etc.)"
            )
        context_cols, time_fields = context
        missing = [c for c in context_cols if c not in names]
        if missing:
            raise ValueError(f"{label}: missing context column(s) {missing}; it has {names}")
        rows = reader.count()
        if rows == 0:
            raise ValueError(f"{label}: no rows")
        stats: dict[str, Any] = {"rows": rows}
        id_columns = [item, group_col, *([user] if user else [])]
        reader.profile(id_columns, [time_col] if time_col else [], text_ids)
        item_sql, item_type = reader.id_column(item, text_ids)
        group_sql, _ = reader.id_column(group_col, text_ids)
        user_sql, user_type = reader.id_column(user, text_ids) if user else ("NULL", None)
        time_sql = (
            reader.time_column(time_col, options["time_format"], options["time_unit"])
            if time_col is not None
            else "CAST(0 AS DOUBLE)"
        )
        spaced = reader.spaced(context_cols)  # str.strip() is slow in SQL: only where needed
        ctx = "".join(f", {_context_text(c, c in spaced)} AS ctx_{c}" for c in context_cols)
        engine.execute(
            f"CREATE TEMP TABLE clicks AS SELECT rowid AS rid, {group_sql} AS grp, "
            f"{item_sql} AS item, {time_sql} AS t, {user_sql} AS usr{ctx} FROM raw",
            "typed clicks",
        )
        engine.execute("DROP TABLE raw", "typed clicks")
        sql = protocol_sql.click_log_script(mode, options, has_time=time_col is not None)
        checks, rest = _split_script(sql, "check_stats")
        engine.run_script(checks)
        _report_checks(engine.one("SELECT * FROM check_stats"), stats, where, label, meta)
        engine.run_script(rest)
        meta = meta | {"source": label, "item_id_type": item_type, "user_id_type": user_type}
        write_outputs(engine, out, meta, stats, label)
        if context_cols or time_fields:
            from graphrec.datasets import context as ctx_files

            engine.run_script(protocol_sql.context_script(context_cols, time_fields))
            ctx_files.write_from_engine(engine, out, mode, context_cols, time_fields)
        cl.write_meta(out, meta, stats)
        log.info("%s -> %s: %s (DuckDB: %s)", label, out_dir, stats, timed(engine.seconds))
    return stats


def write_outputs(engine, out: Path, meta: dict[str, Any], stats: dict[str, Any], label: str):
    """The files of a click-log folder from the protocol's tables, and the counts that
    complete ``stats``: for any engine with ``one``, ``rows``, ``copy_lines``,
    ``write_sessions`` and ``write_labels`` (DuckDB's :class:`Engine`, Spark's runner)."""
    options, users = meta["options"], meta["columns"]["user"] is not None
    if meta["mode"] == "session":
        stats.update(_session_stats(engine, options))
        for part in ("train", "test"):
            engine.write_sessions(part, out / f"{part}_sessions.txt")
        engine.write_labels(out / "items.tsv", "item_ids", "item")
        if users:
            for part in ("train", "test"):
                engine.copy_lines(
                    "SELECT CAST(u.id AS STRING) AS line FROM session_users AS s JOIN user_ids "
                    f"AS u ON s.usr = u.usr WHERE s.part = '{part}' ORDER BY s.rank",
                    out / f"{part}_session_users.txt",
                )
            engine.write_labels(out / "users.tsv", "user_ids", "usr")
            stats["users"] = int(engine.rows("SELECT count(*) FROM user_ids")[0][0])
        return
    counts = engine.one("SELECT * FROM sequential_stats")
    stats["dropped_rows_rare_items"] = int(counts["dropped_rows_rare_items"] or 0)
    stats["dropped_items_rare"] = int(counts["dropped_items_rare"] or 0)
    if not counts["interactions"]:
        raise ValueError(
            f"{label}: nothing is left after min_item_support={options['min_item_support']}"
        )
    engine.copy_lines(
        "SELECT CAST(uid AS STRING) || ' ' || CAST(iid AS STRING) AS line FROM sequence_out "
        "ORDER BY uid, pos",
        out / "interactions.txt",
    )
    engine.write_labels(out / "items.tsv", "item_ids", "item")
    engine.write_labels(out / "users.tsv", "user_ids", "usr")
    for key in ("interactions", "items", "users", "evaluated_users"):
        stats[key] = int(counts[key])


class _engine_in:
    """An :class:`Engine` spilling into a folder inside ``staging`` (removed with it)."""

    def __init__(self, staging: Path, memory_limit, threads, progress, source: Path) -> None:
        self.args = (staging / ".spill", memory_limit, threads, progress, source.stat().st_size)

    def __enter__(self) -> Engine:
        self.engine = Engine(*self.args)
        return self.engine

    def __exit__(self, *exc) -> None:
        self.engine.close()


def _split_script(sql: str, view: str) -> tuple[str, str]:
    """The script up to the statement creating ``view`` (included), and the rest."""
    marker = f"CREATE OR REPLACE TEMP VIEW {view} AS"
    at = sql.index(marker)
    end = sql.index(";", at) + 1
    return sql[:end], sql[end:]


def _report_checks(
    found: dict[str, Any], stats: dict[str, Any], where, label: str, meta: dict[str, Any]
) -> None:
    """Duplicates, time order and users: the counts, warnings and errors of the pandas path."""
    columns, options = meta["columns"], meta["options"]
    group_col = columns["session"] if meta["mode"] == "session" else columns["user"]
    item, time_col, user = columns["item"], columns["time"], columns["user"]
    from graphrec.datasets.clicklog import report_duplicates, report_unsorted

    count, first = int(found["duplicate_rows"] or 0), found["first_duplicate"]
    first = None if first is None else int(first)
    columns = (group_col, item, time_col)
    report_duplicates(stats, count, first, where, label, columns, options["duplicates"])
    count, first = int(found["rows_out_of_time_order"] or 0), found["first_late"]
    first = None if first is None else int(first)
    report_unsorted(stats, count, first, where, label, (group_col, time_col), options["unsorted"])
    if meta["mode"] == "session" and user is not None and found["first_several_users"] is not None:
        row = int(found["first_several_users"])
        raise ValueError(f"{where(row)}: column {user!r}: this session has several users")


def _session_stats(engine: Engine, options: dict[str, Any]) -> dict[str, Any]:
    """The counts of :func:`graphrec.datasets.preprocess.standard_protocol`, in its order,
    raising its errors."""
    from graphrec.datasets.preprocess import _split_date

    found = engine.one("SELECT * FROM protocol_stats")
    msl, mis = options["min_session_length"], options["min_item_support"]
    if not engine.rows("SELECT count(*) FROM sessions")[0][0]:
        raise ValueError(
            "no session is left after the filters (min_session_length="
            f"{msl}, min_item_support={mis})"
        )
    if not found["train_sessions"]:
        raise ValueError("the split leaves no training session; use a shorter test period")
    stats: dict[str, Any] = {}
    for key in ("raw_clicks", "raw_sessions", "dropped_sessions_length_1",
                "dropped_clicks_rare_items", "dropped_items_rare",
                "dropped_sessions_after_item_filter"):  # fmt: skip
        stats[key] = int(found[key] or 0)
    by_days = options.get("test_fraction") is None
    stats.update(_split_date(found["split_at"] if by_days else found["first_test_date"]))
    for key in ("dropped_sessions_on_split_date", "dropped_test_clicks_unseen_items",
                "dropped_test_sessions_after_unseen_filter", "train_sessions",
                "test_sessions", "items"):  # fmt: skip
        stats[key] = int(found[key] or 0)
    for key, value in stats.items():
        log.info("%s: %s", key, value)
    return stats


# ----------------------------------------------------------------------------------------
# the benchmarks' raw logs


#: what ``pd.read_csv`` reads as NaN by default (YooChoose is read that way)
_PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
              "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan",
              "null"}  # fmt: skip


def _int_value(text: str) -> str:
    """SQL of ``pd.to_numeric`` then an integer check: the value as BIGINT, or NULL."""
    number = f"(CASE WHEN contains({text}, '_') THEN NULL ELSE TRY_CAST({text} AS DOUBLE) END)"
    # (DuckDB's cast rounds '5.5' to 6: only digits go through the integer cast)
    digits = f"regexp_full_match({text}, '[+-]?[0-9]+')"
    return (
        f"coalesce(CASE WHEN {digits} THEN TRY_CAST({text} AS BIGINT) END, "
        f"CASE WHEN {number} = round({number}) THEN CAST({number} AS BIGINT) END)"
    )


def _sessions_of(engine: Engine, order: str) -> None:
    """``kept`` (the protocol's input) from ``typed``: sessions numbered by first
    appearance, clicks in ``order`` within them (ties: file order), a session dated by
    its last row in the file."""
    engine.execute(
        "CREATE TEMP TABLE kept AS SELECT min(rid) OVER (PARTITION BY sid) AS s, item, "
        f"row_number() OVER (PARTITION BY sid ORDER BY {order}rid) AS pos, "
        "first_value(d) OVER (PARTITION BY sid ORDER BY rid DESC) AS sdate, "
        "CAST(NULL AS VARCHAR) AS usr FROM typed",
        "sessions",
    )
    engine.execute("DROP TABLE raw", "sessions")
    engine.execute("DROP TABLE typed", "sessions")


def _checked_ints(reader: ClickLogReader, columns: dict[str, str], header_lines: int) -> dict:
    """The columns (name in the file -> name in messages) as BIGINT SQL, refusing the
    first row that is not an integer as :func:`preprocess._checked_int` does."""
    exprs = {c: _int_value(f"trim({_ident(c)})") for c in columns}
    found = reader.engine.execute(
        "SELECT "
        + ", ".join(f"min(CASE WHEN ({e}) IS NULL THEN rowid END)" for e in exprs.values())
        + " FROM raw",
        "check values",
    )[0]
    for (column, label), bad in zip(columns.items(), found, strict=True):
        if bad is not None:
            value = reader._value(column, int(bad))
            if reader.pandas_na and (value is None or value in _PANDAS_NA):
                value = np.nan  # pandas' default missing values
            raise ValueError(
                f"{reader.path}, line {int(bad) + 1 + header_lines}: {label} {value!r} "
                "is not an integer"
            )
    return exprs


def _benchmark_outputs(engine: Engine, folder: Path, first_rank: int = 1) -> None:
    """``train_sessions.txt``, ``test_sessions.txt`` and ``item_ids.txt`` of a benchmark
    folder, each written beside its final name and renamed over it."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".graphrec-", suffix=".tmp", dir=folder))
    try:
        engine.write_sessions("train", staging / "train_sessions.txt", first_rank)
        engine.write_sessions("test", staging / "test_sessions.txt")
        rows = engine.con.execute("SELECT id, item FROM item_ids ORDER BY id")
        with open(staging / "item_ids.txt", "w") as f:
            f.write("# new_id original_id\n")
            while True:
                chunk = rows.fetchmany(1 << 16)
                if not chunk:
                    break
                f.write("".join(f"{i} {v}\n" for i, v in chunk))
        for name in ("train_sessions.txt", "test_sessions.txt", "item_ids.txt"):
            os.replace(staging / name, folder / name)
    finally:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)


def _protocol(engine: Engine, test_days: float) -> dict[str, Any]:
    sql = protocol_sql.script(("session",), test_days=test_days, item_order="first_seen")
    engine.run_script(sql)
    return _session_stats(
        engine, {"min_session_length": 2, "min_item_support": 5, "test_fraction": None}
    )


def diginetica(
    path: Path, out_dir: Path, memory_limit=None, threads=None, progress=False
) -> dict[str, Any]:
    """:func:`graphrec.datasets.preprocess_diginetica` on DuckDB: the same files."""
    if not path.is_file():
        raise FileNotFoundError(f"raw Diginetica log not found: {path}")
    from graphrec.datasets import clicklog as cl

    _, first = cl.text_layout(path, ";", "utf-8")
    names = header_names(first, ";")
    need = ["session_id", "item_id", "timeframe", "eventdate"]
    with spill_folder(Path(out_dir)) as spill:
        engine = Engine(spill, memory_limit, threads, progress, path.stat().st_size)
        try:
            reader = ClickLogReader(engine, path, cl._Where(str(path), 2, ";", "utf-8"),
                                    parquet=False)  # fmt: skip
            reader.load_text(";", names, "utf-8")
            missing = [c for c in need if c not in names]
            if missing:
                raise ValueError(
                    f"{path}: missing column(s) {missing}; expected the header "
                    "session_id;user_id;item_id;timeframe;eventdate"
                )
            if reader.count() == 0:
                raise ValueError(f"{path}: no clicks")
            day = "eventdate"
            plain = f"regexp_full_match({_ident(day)}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')"
            duck_ns = f"epoch_ns(TRY_STRPTIME({_ident(day)}, '%Y-%m-%d'))"
            ns, bad = reader.mapped_ns(_ident(day), plain, duck_ns, "%Y-%m-%d")
            if bad is not None:
                raise ValueError(f"{path}, line {bad + 2}: eventdate {reader._value(day, bad)!r}")
            ints = _checked_ints(
                reader, {"session_id": "session_id", "item_id": "item_id",
                         "timeframe": "timeframe"}, 1,
            )  # fmt: skip
            # a session's date: the eventdate of its last row in the file (whole seconds)
            engine.execute(
                "CREATE TEMP TABLE typed AS SELECT rowid AS rid, "
                f"{ints['session_id']} AS sid, {ints['item_id']} AS item, "
                f"{ints['timeframe']} AS tf, CAST(({ns}) // 1000000000 AS DOUBLE) AS d FROM raw",
                "typed clicks",
            )
            _sessions_of(engine, "tf, ")
            stats = _protocol(engine, test_days=7)
            _benchmark_outputs(engine, Path(out_dir) / "diginetica")
        finally:
            engine.close()
    return stats


def yoochoose(
    path: Path, out_dir: Path, fractions: tuple[int, ...], memory_limit=None, threads=None,
    progress=False,
) -> dict[str, Any]:  # fmt: skip
    """:func:`graphrec.datasets.preprocess_yoochoose` on DuckDB: the same files."""
    if not path.is_file():
        raise FileNotFoundError(f"raw YooChoose log not found: {path}")
    from graphrec.datasets import clicklog as cl

    with open(path, "rb") as f:
        first = f.readline().decode("utf-8", errors="replace")
    header = 1 if first.lower().startswith("session") else 0
    fields = max(3, len(next(csv.reader([first.rstrip("\r\n")]))) if first.strip() else 3)
    names = [f"column{i}" for i in range(fields)]
    with spill_folder(Path(out_dir)) as spill:
        engine = Engine(spill, memory_limit, threads, progress, path.stat().st_size)
        try:
            reader = ClickLogReader(engine, path, cl._Where(str(path), 1 + header, ",", "utf-8"),
                                    parquet=False)  # fmt: skip
            reader.load_text(",", names, "utf-8", header=bool(header))
            reader.pandas_na = True
            if reader.count() == 0:
                raise ValueError(f"{path}: no clicks")
            stamp = f"substr({_ident('column1')}, 1, 19)"
            plain = (
                f"regexp_full_match({stamp}, "
                "'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}')"
            )
            duck_ns = f"epoch_ns(TRY_STRPTIME({stamp}, '%Y-%m-%dT%H:%M:%S'))"
            ns, bad = reader.mapped_ns(stamp, plain, duck_ns, "%Y-%m-%dT%H:%M:%S")
            if bad is not None:
                value = reader._value("column1", bad)
                value = np.nan if value is None or value in _PANDAS_NA else value
                raise ValueError(f"{path}, line {bad + 1 + header}: timestamp {value!r}")
            ints = _checked_ints(reader, {"column0": "session id", "column2": "item id"}, header)
            engine.execute(
                "CREATE TEMP TABLE typed AS SELECT rowid AS rid, "
                f"{ints['column0']} AS sid, {ints['column2']} AS item, "
                f"CAST(({ns}) // 1000000000 AS DOUBLE) AS d FROM raw",
                "typed clicks",
            )
            _sessions_of(engine, "")  # file order within a session
            stats = _protocol(engine, test_days=1)
            engine.execute(
                "CREATE TEMP TABLE samples AS SELECT rank, sum(n - 1) OVER (ORDER BY rank) AS "
                "cum FROM (SELECT rank, count(*) AS n FROM train_out GROUP BY rank) AS q",
                "fractions",
            )
            total = int(engine.rows("SELECT coalesce(max(cum), 0) FROM samples")[0][0])
            for f in fractions:
                keep = int(total / f)
                if keep == 0:
                    raise ValueError(f"1/{f} of {total} training samples keeps nothing")
                first_rank = int(
                    engine.rows("SELECT min(rank) FROM samples WHERE cum > ?", [total - keep])[0][0]
                )
                sessions = stats["train_sessions"] - first_rank + 1
                stats[f"yoochoose1_{f}_samples_cut"] = keep
                stats[f"yoochoose1_{f}_sessions"] = sessions
                log.info("yoochoose1_%d: last %d samples -> %d sessions", f, keep, sessions)
                _benchmark_outputs(engine, Path(out_dir) / f"yoochoose1_{f}", first_rank)
        finally:
            engine.close()
    return stats
