"""The preprocessing protocols as SQL scripts that any SQL engine with window functions runs.

``checks.sql`` (duplicates, time order, one user per session), ``session.sql``
(the SR-GNN reference protocol) and ``sequential.sql`` (leave-one-out) are
portable SQL: DuckDB runs them on one machine (:mod:`graphrec.datasets.duck`),
Spark SQL on a cluster (:mod:`graphrec.datasets.spark`). :func:`script` puts
the parts a protocol needs together with its options filled in: that text is
what both engines execute, statement by statement, and what
``graphrec preprocess clicks --sql FILE`` writes out.

Every statement creates a temporary view. An engine may materialise them
instead (DuckDB makes tables, so that each step is computed once and spills to
disk under the memory limit; Spark caches them).
"""

from __future__ import annotations

import re
from importlib import resources
from string import Template

PARTS = ("checks", "session", "sequential")
_VIEW = re.compile(r"CREATE OR REPLACE TEMP VIEW (\w+) AS", re.IGNORECASE)


def _sql_float(value: float | None) -> str:
    """A float as text that parses back to the same double (``repr``), or 'NaN' for none."""
    return "NaN" if value is None else repr(float(value))


def script(
    parts: tuple[str, ...],
    *,
    min_item_support: int = 5,
    min_session_length: int = 2,
    test_days: float | None = 7,
    test_fraction: float | None = None,
    drop_duplicates: bool = False,
    check_duplicates: bool = True,
    check_order: bool = True,
    item_order: str = "sorted",
) -> str:
    """The SQL of ``parts`` (of :data:`PARTS`, in order) with the options substituted.

    Args:
        parts: e.g. ``("checks", "session")`` for a click log in session mode.
        min_item_support: drop clicks on items clicked fewer times.
        min_session_length: drop sessions with fewer clicks.
        test_days: the test period, in days (session mode; see
            :func:`graphrec.datasets.from_click_log`).
        test_fraction: instead of ``test_days``, the latest share of sessions.
        drop_duplicates: drop rows repeating an earlier row's session, item
            and time (``duplicates='drop'``); they are counted either way.
        check_duplicates: count duplicates (``False`` when the log has no time).
        check_order: count rows out of time order (``False`` without a time).
        item_order: ``'sorted'`` (new item ids in the order of the log's ids)
            or ``'first_seen'`` (order of first appearance in training).
    """
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown SQL part {part!r}; one of {PARTS}")
    if item_order not in ("sorted", "first_seen"):
        raise ValueError(f"item_order must be 'sorted' or 'first_seen', got {item_order!r}")
    values = {
        "min_item_support": str(int(min_item_support)),
        "min_session_length": str(int(min_session_length)),
        "by_days": "TRUE" if test_fraction is None else "FALSE",
        "test_days": _sql_float(test_days if test_fraction is None else None),
        "test_fraction": _sql_float(test_fraction if test_fraction is not None else 0.0),
        "drop_duplicates": "TRUE" if drop_duplicates else "FALSE",
        "check_duplicates": "TRUE" if check_duplicates else "FALSE",
        "check_order": "TRUE" if check_order else "FALSE",
        "item_order": item_order,
    }
    texts = [resources.files(__package__).joinpath(f"{p}.sql").read_text() for p in parts]
    return "\n".join(Template(t).substitute(values) for t in texts)


def click_log_script(mode: str, options: dict, has_time: bool) -> str:
    """The script of a click log in ``mode`` (``"session"`` or ``"sequential"``) for the
    ``options`` of :func:`graphrec.datasets.from_click_log` (as ``meta.json`` keeps them:
    ``min_item_support``, ``min_session_length``, ``test_days``, ``test_fraction``,
    ``duplicates``); ``has_time``: whether the log has a time column."""
    return script(
        ("checks", mode),
        min_item_support=options["min_item_support"],
        min_session_length=options["min_session_length"],
        test_days=options["test_days"],
        test_fraction=options["test_fraction"],
        drop_duplicates=options["duplicates"] == "drop",
        check_duplicates=has_time,
        check_order=has_time,
    )


def statements(sql: str) -> list[tuple[str, str]]:
    """``(stage, statement)`` of every statement of ``sql``: the stage is the latest
    ``-- stage: name`` comment above it; comments are removed."""
    result, stage, lines = [], "start", []
    for line in sql.splitlines():
        mark = re.match(r"\s*-- stage: (.+)", line)
        if mark:
            stage = mark.group(1).strip()
            continue
        code = line.split("--", 1)[0] if "'" not in line else line
        if code.strip():
            lines.append(code.rstrip())
        if code.rstrip().endswith(";"):
            result.append((stage, "\n".join(lines).rstrip(";")))
            lines = []
    if lines:
        raise ValueError("the SQL script ends without a ';'")
    return result


def view_name(statement: str) -> str | None:
    """The view a statement creates, if it is a ``CREATE OR REPLACE TEMP VIEW``."""
    found = _VIEW.match(statement.strip())
    return found.group(1) if found else None


def as_table(statement: str) -> str:
    """The statement creating a temporary table in place of its view (DuckDB)."""
    return _VIEW.sub(r"CREATE OR REPLACE TEMP TABLE \1 AS", statement.strip(), count=1)


#: the context fields a click's time gives (``time_context``): their value ids and labels
TIME_FIELDS = {
    "hour": (24, [str(h) for h in range(24)]),  # id = hour + 1, UTC
    "weekday": (7, [str(d) for d in range(1, 8)]),  # id = ISO weekday (Monday = 1), UTC
}


def time_field_sql(name: str, t: str) -> str:
    """The value id of time field ``name`` of seconds ``t`` (portable SQL; UTC)."""
    if name == "hour":
        return f"(((CAST(floor({t} / 3600) AS BIGINT) % 24) + 24) % 24 + 1)"
    if name == "weekday":  # 1970-01-01 was a Thursday (4)
        return f"(((CAST(floor({t} / 86400) AS BIGINT) + 3) % 7 + 7) % 7 + 1)"
    raise ValueError(f"unknown time context field {name!r}; one of {sorted(TIME_FIELDS)}")


def context_script(columns: list[str], time_fields: list[str]) -> str:
    """The views of the per-click context fields, after the protocol's script.

    Input: ``clicks`` with a column ``ctx_<name>`` per field of ``columns`` (the
    value as text, ``NULL`` when unknown) and ``t``. Output: ``ctx_values_<name>``
    (``v``, ``id``: value ids ``1 ..`` in the values' sorted order) and
    ``click_context`` (``rid``, then ``f_<name>`` per field: the value id, 0 =
    unknown), the ``columns`` first, then the ``time_fields``."""
    lines = ["-- stage: context"]
    for n in columns:
        lines.append(
            f"CREATE OR REPLACE TEMP VIEW ctx_values_{n} AS\n"
            f"SELECT v, row_number() OVER (ORDER BY v) AS id\n"
            f"FROM (SELECT DISTINCT ctx_{n} AS v FROM clicks WHERE ctx_{n} IS NOT NULL) AS q;"
        )
    picks = [f"coalesce(v_{n}.id, 0) AS f_{n}" for n in columns]
    picks += [f"{time_field_sql(n, 'c.t')} AS f_{n}" for n in time_fields]
    joins = "".join(f"\nLEFT JOIN ctx_values_{n} AS v_{n} ON c.ctx_{n} = v_{n}.v" for n in columns)
    lines.append(
        "CREATE OR REPLACE TEMP VIEW click_context AS\n"
        f"SELECT c.rid, {', '.join(picks)}\nFROM clicks AS c{joins};"
    )
    return "\n".join(lines) + "\n"


def context_clicks(mode: str, part: str, names: list[str]) -> str:
    """The context value ids of the clicks written to a part's file: ``(rank, pos,
    f_<name> ...)``, one row per click, in file order after ``ORDER BY rank, pos``.
    Session mode: ``part`` is ``train`` or ``test`` (``rank``: the session's line);
    sequential mode: ``rank`` is the user id (``interactions.txt``'s order)."""
    fields = ", ".join(f"x.f_{n}" for n in names)
    if mode == "session":
        return (
            f"SELECT o.rank, o.pos, {fields} FROM {part}_out AS o "
            f"JOIN ranked AS r ON r.part = '{part}' AND r.rank = o.rank "
            "JOIN kept AS k ON k.s = r.s AND k.pos = o.pos "
            "JOIN click_context AS x ON x.rid = k.rid"
        )
    return (
        f"SELECT q.uid AS rank, q.pos, {fields} FROM sequence_out AS q "
        "JOIN user_ids AS u ON u.id = q.uid "
        "JOIN kept AS k ON k.usr = u.usr AND k.pos = q.pos "
        "JOIN click_context AS x ON x.rid = k.rid"
    )
