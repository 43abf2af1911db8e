"""Argument checks shared by the models, the trainer, the evaluator and the command line.

Every check raises a :class:`ValueError` (a :class:`TypeError` for a value of
the wrong type) whose message names the argument, so that bad input fails at
once, before any work, with a message a user can act on.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
import types
import typing
import warnings
from pathlib import Path
from typing import Any

import torch


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` (a Python or numpy integer, never a bool, float or text)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """``value`` as a finite ``float`` in the range given (integers are accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None:
        if exclusive_minimum and value <= minimum:
            raise ValueError(f"{name} must be > {minimum:g}, got {value:g}")
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value:g}")
    return value


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_device(device: str | torch.device | None) -> torch.device | None:
    """A usable torch device, or a clear error (an unknown name, CUDA or MPS absent)."""
    if device is None:
        return None
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device {device!r} is not a torch device (cpu, cuda, cuda:1, mps, ...)"
        ) from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(device)!r}: CUDA is not available (this torch build has no "
                "CUDA support, or no GPU is visible); use cpu"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r}: only {torch.cuda.device_count()} CUDA device(s)"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        # other backends (xpu, ...) exist only in some builds: let torch say whether it can
        try:
            torch.empty(0, device=parsed)
        except (RuntimeError, AssertionError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"device {str(device)!r} cannot be used: {first}") from None
    return parsed


#: the least value of a model's integer constructor arguments, by name (the
#: others only need to be integers)
MINIMUMS = {
    "num_items": 1,
    "hidden_channels": 1,
    "num_layers": 1,
    "num_heads": 1,
    "num_negatives": 1,
    "num_sampled": 1,
    "window": 1,
    "hard_k": 1,
    "num_users": 0,
    "num_categories": 0,
}


def _matches(value: Any, hint: Any) -> bool | None:
    """Whether ``value`` is of the annotated type (``None``: a type not checked here)."""
    origin = typing.get_origin(hint)
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        results = [_matches(value, h) for h in typing.get_args(hint)]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) is not False for v in value)
        return len(args) == len(value) and all(
            _matches(v, h) is not False for v, h in zip(value, args, strict=True)
        )
    return None


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) is tuple:
        return (
            "a tuple of "
            + _describe(typing.get_args(hint)[0]).removeprefix("an ").removeprefix("a ")
            + "s"
        )
    text = getattr(hint, "__name__", None) or str(hint)
    return {"int": "an integer", "float": "a number", "bool": "True or False", "str": "text"}.get(
        text, text.replace("typing.", "")
    )


def check_arguments(func: Any, arguments: dict[str, Any]) -> None:
    """Check constructor arguments against ``func``'s annotations and :data:`MINIMUMS`.

    Raises:
        TypeError: an argument of another type than annotated (``SRGNN(2.5)``,
            ``SRGNN("10")``, ``hidden_channels="abc"``), naming it.
        ValueError: an integer below its minimum.
    """
    hints = _hints(func)
    for name, value in arguments.items():
        hint = hints.get(name)
        if hint is None:
            continue
        if _matches(value, hint) is False:
            raise TypeError(
                f"{name} must be {_describe(hint)}, got {value!r} ({type(value).__name__})"
            )
        minimum = MINIMUMS.get(name)
        if minimum is not None and isinstance(value, numbers.Integral) and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
        if typing.get_origin(hint) is tuple and isinstance(value, (tuple, list)):
            for v in value:
                if isinstance(v, numbers.Integral) and not isinstance(v, bool) and v < 1:
                    raise ValueError(f"every entry of {name} must be >= 1, got {tuple(value)}")


@functools.cache
def _hints(func: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except (NameError, TypeError):  # an annotation that does not evaluate: nothing checked
        return {}


def checked_init(init: Any) -> Any:
    """Wrap a constructor so that :func:`check_arguments` runs on every call."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self, *args: Any, **kwargs: Any) -> None:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{type(self).__name__}(): {e}") from None
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(signature.parameters)))  # self
        check_arguments(init, arguments)
        init(self, *args, **kwargs)

    wrapper.__graphrec_checked__ = True
    return wrapper


#: where graphrec and torch live: :func:`warn_caller` looks past their frames
_LIBRARY_DIRS = (
    str(Path(torch.__file__).resolve().parent),
    str(Path(__file__).resolve().parent),
)


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside graphrec and torch
    (decorators such as ``torch.no_grad`` and overriding methods in between)."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
        _LIBRARY_DIRS
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
