"""Item and user side fields of a user's own click log: a product table, a user profile table.

:func:`read_feature_table` reads and checks a table (CSV, TSV, Parquet or a
DataFrame: one row per item or user, an id column named like the log's, one
column per field); :func:`write_feature_files` maps it onto a processed
folder's compact ids and writes ``item_features.tsv`` / ``user_features.tsv``
with ``fields.json``; :func:`read_feature_files` gives the tables back to
:func:`~graphrec.datasets.load_click_log`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from graphrec.datasets.io import log
from graphrec.nn.field_embedding import is_field_name

FIELDS_FILE = "fields.json"


@dataclass
class FeatureTable:
    """A checked side-field table: each entity's values, by the log's own id."""

    kind: str  # "item" or "user"
    label: str  # the file (or "DataFrame") for messages
    ids: pd.Series  # the log's own ids, typed like the log's (int or str)
    id_type: str
    #: per field: each row's values (a tuple: several for a multi-valued field)
    values: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    multi: dict[str, bool] = field(default_factory=dict)


def read_feature_table(
    source: str | os.PathLike | pd.DataFrame,
    kind: str,
    id_col: str,
    cols: list[str] | None = None,
    multi_valued: list[str] | None = None,
    value_sep: str = "|",
    sep: str | None = None,
    encoding: str = "utf-8",
    text_ids: bool = False,
) -> FeatureTable:
    """Read and check a side-field table.

    Args:
        source: a ``.csv``/``.tsv``/``.parquet`` path, or a DataFrame.
        kind (str): ``"item"`` or ``"user"`` (for messages and file names).
        id_col (str): the id column: the log's item (user) column name.
        cols (list, optional): the field columns (default: every other column).
        multi_valued (list, optional): columns holding several values joined by
            ``value_sep`` (a movie's genres ``"Action|Comedy"``); names that are
            not field columns of this table are left to another table.
        value_sep (str): the separator of multi-valued columns. (default: ``"|"``)
        sep, encoding, text_ids: as :func:`~graphrec.datasets.from_click_log`'s.

    An empty value (``""``, ``NaN``, ``"null"`` ...) is unknown (0). An id listed
    twice with the same values is kept once; with different values it is an
    error.

    Raises:
        ValueError: no id column, a field column that is missing or whose name is
            not an identifier, an empty id, or an id listed twice with different
            values; the message names the file, the line and the column.
    """
    from graphrec.datasets.clicklog import _MISSING, _ids, _read, _Where

    if not isinstance(source, pd.DataFrame) and not Path(source).is_file():
        raise FileNotFoundError(f"{kind} feature table not found: {source}")
    frame, label, first_line, sep = _read(source, sep, encoding)
    where = _Where(label, first_line, sep, encoding)
    if id_col not in frame.columns:
        raise ValueError(
            f"{label}: no id column {id_col!r} (the log's {kind} column); it has "
            f"{list(frame.columns)}"
        )
    cols = [c for c in frame.columns if c != id_col] if cols is None else list(cols)
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(f"{label}: missing {kind} feature column(s) {missing}")
    if not cols:
        raise ValueError(f"{label}: no {kind} feature column besides {id_col!r}")
    for c in cols:
        if not is_field_name(c):
            raise ValueError(
                f"{label}: column {c!r} cannot name a field: use letters, digits and _ "
                "(an identifier), e.g. rename it"
            )
    multi = set(multi_valued or []) & set(cols)  # the others may be another table's
    if frame.empty:
        raise ValueError(f"{label}: no rows")
    ids, id_type = _ids(frame[id_col], id_col, where, text_ids)
    table = FeatureTable(kind, label, ids.reset_index(drop=True), id_type)
    for c in cols:
        column = frame[c]
        text = column.astype(str).str.strip()
        empty = column.isna().to_numpy() | text.isin(_MISSING).to_numpy()
        rows: list[tuple[str, ...]] = []
        for value, blank in zip(text.tolist(), empty.tolist(), strict=True):
            if blank:
                rows.append(())
            elif c in multi:
                parts = [p.strip() for p in value.split(value_sep)]
                rows.append(tuple(sorted({p for p in parts if p and p not in _MISSING})))
            else:
                rows.append((value,))
        table.values[c] = rows
        table.multi[c] = c in multi
    _check_repeats(table, where)
    return table


def _check_repeats(table: FeatureTable, where) -> None:
    """An id listed twice must have the same values every time."""
    ids = table.ids
    repeated = ids.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    first: dict[Any, int] = {}
    for row in np.flatnonzero(repeated).tolist():
        key = ids.iloc[row]
        if key not in first:
            first[key] = row
            continue
        for c, rows in table.values.items():
            if rows[row] != rows[first[key]]:
                raise ValueError(
                    f"{where(row)}: column {c!r}: {table.kind} {key!r} is listed again with "
                    f"{'|'.join(rows[row]) or '(none)'!r}, {where(first[key])} gave it "
                    f"{'|'.join(rows[first[key]]) or '(none)'!r}"
                )


def _coerce_ids(table: FeatureTable, id_type: str) -> pd.Series:
    """The table's ids typed like the log's (integer ids read as text match too)."""
    if table.id_type == id_type:
        return table.ids
    if id_type == "str":
        return table.ids.astype(str)
    return table.ids  # text ids against an integer log: they match nothing (counted below)


def write_feature_files(out: Path, table: FeatureTable, labels: list, id_type: str) -> dict:
    """Map ``table`` onto the folder's compact ids (``labels``: ``[None, id of 1, ...]``)
    and write ``<kind>_features.tsv``; returns the entry of ``fields.json``.

    A log id without a row gets unknown values (counted); a row whose id the
    log never shows is counted and named in a warning.
    """
    position = {label: i for i, label in enumerate(labels) if i}
    ids = _coerce_ids(table, id_type).tolist()
    compact = [position.get(v, 0) for v in ids]
    unseen = [v for v, c in zip(ids, compact, strict=True) if c == 0]
    listed = {c for c in compact if c}
    stats = {
        f"{table.kind}s_with_features": len(listed),
        f"{table.kind}s_without_features": len(labels) - 1 - len(listed),
        "rows_not_in_log": len(unseen),
    }
    if unseen:
        log.warning(
            "%s: %d %s id(s) of the feature table are not in the processed log (first: %s); "
            "they are ignored",
            table.label, len(unseen), table.kind, ", ".join(map(repr, unseen[:5])),
        )  # fmt: skip
    fields: dict[str, Any] = {}
    columns = {}
    for name, rows in table.values.items():
        vocabulary = sorted({v for r in rows for v in r})
        value_id = {v: k + 1 for k, v in enumerate(vocabulary)}
        cells = [""] * len(labels)
        for c, r in zip(compact, rows, strict=True):
            if c:
                cells[c] = ",".join(str(value_id[v]) for v in r)
        columns[name] = cells
        fields[name] = {"multi_valued": table.multi[name], "values": vocabulary}
    path = out / f"{table.kind}_features.tsv"
    lines = [f"# {table.kind}\t" + "\t".join(columns)]
    for i in range(1, len(labels)):
        lines.append(f"{i}\t" + "\t".join(columns[name][i] for name in columns))
    path.write_text("\n".join(lines) + "\n")
    return {"source": table.label, "fields": fields, "stats": stats}


def write_fields_json(out: Path, entries: dict[str, dict]) -> None:
    (out / FIELDS_FILE).write_text(json.dumps(entries, indent=2) + "\n")


def read_feature_files(folder: Path, kind: str, count: int) -> dict[str, Tensor]:
    """``{field: LongTensor [count + 1, W]}`` from ``<kind>_features.tsv`` and
    ``fields.json`` (``{}`` when the folder has no such table)."""
    meta_path = folder / FIELDS_FILE
    if not meta_path.is_file():
        return {}
    try:
        entry = json.loads(meta_path.read_text()).get(kind)
    except json.JSONDecodeError as e:
        raise ValueError(f"{meta_path}: not valid JSON ({e})") from None
    if not entry:
        return {}
    names = list(entry["fields"])
    sizes = {n: len(entry["fields"][n]["values"]) for n in names}
    path = folder / f"{kind}_features.tsv"
    cells: dict[str, list[list[int]]] = {n: [[]] for n in names}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            expected = len(cells[names[0]])
            if len(parts) != len(names) + 1 or parts[0] != str(expected):
                raise ValueError(f"{path}, line {lineno}: expected row {expected} with {names}")
            for n, cell in zip(names, parts[1:], strict=True):
                try:
                    values = [int(v) for v in cell.split(",")] if cell else []
                except ValueError:
                    raise ValueError(f"{path}, line {lineno}: column {n!r}: {cell!r}") from None
                if any(not 1 <= v <= sizes[n] for v in values):
                    raise ValueError(
                        f"{path}, line {lineno}: column {n!r}: values outside 1..{sizes[n]}"
                    )
                cells[n].append(values)
    out = {}
    for n in names:
        rows = cells[n]
        if len(rows) != count + 1:
            raise ValueError(f"{path}: {len(rows) - 1} rows for {count} {kind}s")
        width = max(1, max(len(r) for r in rows))
        table = torch.zeros(count + 1, width, dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                table[i, : len(r)] = torch.tensor(r)
        out[n] = table
    return out
