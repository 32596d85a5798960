"""SIGTERM and SIGHUP (`timeout`, `docker stop`, Slurm, a closed terminal) stop a run as Ctrl-C does: the run is
recorded as interrupted, the error line says how to resume it, and the exit code names the signal (128 + number)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kernelagent.errors import EXIT_INTERRUPTED

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
StopHook = Callable[[KeyboardInterrupt], None]

_stop_hooks: list[StopHook] = []
_hooks_lock = threading.Lock()


class Terminated(KeyboardInterrupt):
    """A stop signal other than Ctrl-C. A KeyboardInterrupt, so every place that cleans up after Ctrl-C (run status,
    a suite's pending problems) does the same for it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"terminated by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code_of(interrupt: KeyboardInterrupt) -> int:
    return interrupt.exit_code if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def describe(interrupt: KeyboardInterrupt) -> str:
    return str(interrupt) if isinstance(interrupt, Terminated) else "interrupted"


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise Terminated in the main thread (the only one Python signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}

    def stop(signum: int, _frame: object) -> None:
        for other in HANDLED_SIGNALS:
            signal.signal(other, signal.SIG_IGN)  # a second signal must not cut the clean-up short
        raise Terminated(signum)

    for signum in HANDLED_SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def on_stop(hook: StopHook) -> Iterator[None]:
    """While the block runs, a stop (a signal or Ctrl-C) calls `hook(interrupt)`: from the main thread when the block
    runs in run_interruptibly's worker, or here when the interrupt passes through the block."""
    with _hooks_lock:
        _stop_hooks.append(hook)
    try:
        yield
    except KeyboardInterrupt as interrupt:
        hook(interrupt)
        raise
    finally:
        with _hooks_lock:
            _stop_hooks.remove(hook)


def run_interruptibly(action: Callable[[], None]) -> None:
    """Runs `action` in a worker thread while the main thread waits for it, and re-raises what it raised. A stop is
    then handled at once: LangGraph, unwinding from an interrupt, would first wait for every node in flight (an LLM
    reply can take minutes). The stop hooks record it; the caller exits without waiting for the worker."""
    if threading.current_thread() is not threading.main_thread():
        action()
        return
    raised: list[BaseException] = []

    def work() -> None:
        try:
            action()
        except BaseException as err:  # noqa: B036 - handed to the main thread, which decides
            raised.append(err)

    worker = threading.Thread(target=work, name="driver", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)  # a timed wait, so that signal handlers run in this thread meanwhile
    except KeyboardInterrupt as interrupt:
        _call_stop_hooks(interrupt)
        raise
    if raised:
        raise raised[0]


def _call_stop_hooks(interrupt: KeyboardInterrupt) -> None:
    with _hooks_lock:
        hooks = list(_stop_hooks)
    for hook in hooks:
        try:
            hook(interrupt)
        except Exception:  # noqa: BLE001, S112 - a full disk must not hide the stop itself; the next hook may work
            continue
