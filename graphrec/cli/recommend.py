"""``graphrec recommend``: top-k next items for sessions, in the log's own ids."""

from __future__ import annotations

import argparse
import json

from graphrec.cli import common
from graphrec.training import load_model


def id_lists(flag: str, texts: list[str], as_text: bool) -> list[list]:
    """Ids from ``--session "12 7 33"`` (spaces or commas): integers, or the
    log's own text ids when the model keeps them."""
    out = []
    for text in texts:
        tokens = text.replace(",", " ").split()
        if as_text:
            out.append(tokens)
            continue
        try:
            out.append([int(t) for t in tokens])
        except ValueError:
            raise ValueError(f"{flag} {text!r}: item ids must be integers") from None
    return out


def users(model, texts: list[str] | None) -> list | None:
    if texts is None:
        return None
    labels = model.user_labels
    if labels is not None and any(isinstance(v, str) for v in labels[1:]):
        return texts
    try:
        return [int(t) for t in texts]
    except ValueError:
        raise ValueError(f"--user {texts}: user ids must be integers") from None


def contexts(texts: list[str] | None) -> list[dict[str, int | str]] | None:
    """``--context hour=9,device=mobile`` (one per session) as dicts: integers as
    value ids (or, for a click log's field, as its values), other text as a click
    log's own values."""
    if texts is None:
        return None
    out = []
    for text in texts:
        context: dict[str, int | str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            value = value.strip()
            if not sep or not name.strip() or not value:
                raise ValueError(
                    f"--context {text!r}: expected NAME=VALUE pairs, e.g. hour=9,device=mobile"
                )
            context[name.strip()] = int(value) if value.lstrip("-").isdigit() else value
        out.append(context)
    return out


def cmd_recommend(args: argparse.Namespace) -> None:
    model = load_model(args.checkpoint)
    as_text = model.item_labels is not None
    sessions = id_lists("--session", args.session, as_text)
    histories = None if args.history is None else id_lists("--history", args.history, as_text)
    items, scores = model.recommend(
        sessions,
        k=args.k,
        exclude_seen=args.exclude_seen,
        return_scores=True,
        users=users(model, args.user),
        histories=histories,
        contexts=contexts(args.context),
    )
    rows = items if isinstance(items, list) else items.tolist()
    for session, row, row_scores in zip(sessions, rows, scores.tolist(), strict=True):
        if args.json:
            print(json.dumps({"session": session, "items": row, "scores": row_scores}))
        else:
            print(" ".join(map(str, session)), "->", " ".join(map(str, row)))


def add_parsers(sub, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "recommend", parents=parents, help="top-k next items for sessions (original ids)"
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--session", action="append", required=True, help='e.g. "12 7 33"')
    p.add_argument("--user", action="append", help="the user of each --session (0 = unknown)")
    p.add_argument(
        "--history", action="append", help="the long-term history of each --session (SDM)"
    )
    p.add_argument(
        "--context",
        action="append",
        help="the context of each --session, e.g. hour=9,weekday=2: value ids, or a click log's "
        "own values (device=mobile) (models with context fields)",
    )
    p.add_argument("-k", type=common.positive_int, default=20)
    p.add_argument("--exclude-seen", action="store_true")
    p.add_argument("--json", action="store_true", help="one JSON object per session")
    p.set_defaults(func=cmd_recommend)
