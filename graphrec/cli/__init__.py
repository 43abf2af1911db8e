"""The ``graphrec`` command line: demo, train, evaluate, recommend, serve, export, preprocess,
benchmark, plot.

One module per command (``graphrec.cli.train``, ``.evaluate``, ...), each adding
its sub-parser; :func:`build_parser` puts them together and :func:`main` runs one.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings

from graphrec.cli import benchmark, evaluate, export, plot, preprocess, recommend, serve, train
from graphrec.training.signals import StopNow, TrainingInterrupted

COMMANDS = (train, evaluate, recommend, serve, export, preprocess, benchmark, plot)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="graphrec", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    # -v also after the sub-command; SUPPRESS keeps a -v given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log details"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parsers(sub, [common])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s: %(message)s" if args.verbose else "%(name)s: %(message)s",
    )
    prefix = f"graphrec {args.command}"

    def show_warning(message, category, filename, lineno, file=None, line=None):
        # one line for the user, not Python's source path and line
        print(f"{prefix}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            args.func(args)
    except OSError as e:  # files: the path and the reason, not a bare [Errno N]
        if e.filename is not None and e.strerror:
            text = f"{e.filename}: {e.strerror}"
        else:
            text = str(e)
        print(f"{prefix}: error: {text}", file=sys.stderr)
        return 2
    except (ValueError, ImportError, FloatingPointError, MemoryError) as e:  # bad input, ...
        print(f"{prefix}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        hint = getattr(args, "resume_hint", None)
        if isinstance(e, TrainingInterrupted):
            print(f"\n{prefix}: {e}", file=sys.stderr)
        else:
            print(f"\n{prefix}: interrupted", file=sys.stderr)
        if hint and not isinstance(e, StopNow):
            print(f"progress saved; continue with:\n  {hint}", file=sys.stderr)
        elif hint:
            print(f"the last checkpoint stays; continue with:\n  {hint}", file=sys.stderr)
        return e.exit_code if isinstance(e, TrainingInterrupted) else 130
    return 0
