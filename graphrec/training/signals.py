"""Stopping a training run on SIGINT or SIGTERM at a step boundary.

A signal handled the Python way (``KeyboardInterrupt`` raised wherever the
interpreter happens to be) can land inside ``optimizer.step()``: some
parameters are updated, others not, and a checkpoint saved then cannot be
resumed exactly. SIGTERM (``kill``, a job scheduler's time limit, a container
stopping) is worse: by default it ends the process at once, and every step
since the last checkpoint is lost.

:class:`StopOnSignal` turns both into a request: the handler only records the
signal, and the training loop asks :meth:`StopOnSignal.requested` between
steps, saves ``last.pt`` there, and raises :class:`TrainingInterrupted`. A
second signal stops at once (``KeyboardInterrupt``; the last checkpoint
stays). A signal that is ignored (``SIG_IGN``: SIGINT of a job started in the
background by a shell) or has a handler of someone else's is left alone, as is
every signal off the main thread, where Python cannot install handlers.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType

#: The signals a training run stops on, when the platform has them.
SIGNALS: tuple[str, ...] = ("SIGINT", "SIGTERM")


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal, after a whole step, with ``last.pt`` saved.

    A :class:`KeyboardInterrupt`, so that code that handles Ctrl-C handles
    it too.

    Args:
        signum (int): the signal received.
        where (str): where training stopped (epoch and step).
    """

    def __init__(self, signum: int, where: str) -> None:
        self.signum = signum
        self.where = where
        super().__init__(f"{signal.Signals(signum).name} received: stopped in {where}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal: 128 + its number."""
        return 128 + self.signum


class StopNow(KeyboardInterrupt):
    """A second signal: stop at once, wherever training is (nothing is saved)."""


class StopOnSignal:
    """A context manager that records SIGINT and SIGTERM instead of acting on them.

    Inside ``with StopOnSignal() as stop:``, the first of these signals sets
    :attr:`received`; the code polls :meth:`requested` where stopping is
    safe. A second signal raises :class:`StopNow`. The previous handlers come
    back on exit.

    Args:
        enabled (bool): ``False`` installs nothing (:attr:`received` stays
            ``None``). (default: ``True``)
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def installed(self) -> list[str]:
        """The names of the signals this guard handles now."""
        return [signal.Signals(s).name for s in self._previous]

    def requested(self) -> bool:
        """Whether a signal asked to stop."""
        return self.received is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise StopNow(f"{signal.Signals(signum).name} received twice: stopped at once")
        self.received = signum
        # no logging in a signal handler (its lock may be held by the code interrupted)
        name = signal.Signals(signum).name
        message = (
            f"\n{name} received: stopping after the current step (send it again to stop at once)\n"
        )
        try:
            os.write(2, message.encode())
        except OSError:
            pass  # no stderr to tell: the stop itself still happens

    def __enter__(self) -> StopOnSignal:
        self.received = None
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            return self
        for name in SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            current = signal.getsignal(signum)
            if current not in (signal.SIG_DFL, signal.default_int_handler):
                continue  # ignored on purpose, or someone else's handler
            self._previous[signum] = current
            signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous = {}
