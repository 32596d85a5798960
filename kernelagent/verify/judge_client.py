"""The agent's side of the judge: starts one judge process per reference and GPU, and runs candidate sessions on it.

A session is a socket pair: one end goes to the judge (over its control socket), the other becomes the candidate's
stdin in the sandbox. The judge answers with the session's outcome once the agent says the candidate's process tree
is dead, so nothing the candidate left behind can still be talking to it.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from kernelagent.errors import ReferenceError_
from kernelagent.verify import wire

_OUTCOME_GRACE_S = 60.0  # after the candidate is dead, the judge finishes the comparison in flight


class JudgeError(RuntimeError):
    """The judge failed: it reported an error of its own, or (JudgeGone) its process ended or stopped answering."""


class JudgeGone(JudgeError):
    """The judge process ended or stopped answering during a session (verifier: once may be ours, twice the
    candidate's doing, where it can reach the judge)."""


class Judge:
    """One judge process. Thread-safe: sessions run concurrently, each on its own socket."""

    def __init__(self, config: dict, workdir: Path, env: dict[str, str], ready_timeout_s: float) -> None:
        workdir = Path(workdir).resolve()  # the process starts in workdir: a relative path would not resolve there
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "judge.json"
        config_path.write_text(json.dumps(config, indent=2))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._control = ours
        self._send_lock = threading.Lock()
        self._pending: dict[str, Future] = {}
        self._sids = itertools.count()
        log = open(workdir / "judge.log", "ab")  # noqa: SIM115 - kept open for the process's life
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kernelagent.verify.judge", str(config_path), str(theirs.fileno())],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        log.close()
        self.facts = self._await_ready(ready_timeout_s, workdir)
        self._reader = threading.Thread(target=self._read_outcomes, daemon=True, name="judge-reader")
        self._reader.start()

    def _await_ready(self, timeout_s: float, workdir: Path) -> dict:
        try:
            message, _ = wire.receive(self._control, limit=1 << 24, deadline=time.monotonic() + timeout_s)
        except wire.WireError as err:
            self.close()
            log = (workdir / "judge.log").read_text(errors="replace")[-1500:]
            if "deadline" in str(err):
                raise ReferenceError_(
                    f"the PyTorch reference was not ready within {timeout_s:g}s; reduce sizes with --size"
                ) from err
            raise ReferenceError_(f"the judge process ended while preparing the reference:\n{log}") from err
        if message.get("event") != "ready":
            self.close()
            error = str(message.get("error", "unknown error"))
            raise ReferenceError_(
                f"the PyTorch reference failed to run: {error.splitlines()[0] if error else ''}\n"
                f"{str(message.get('traceback', ''))[-1500:]}"
            )
        return message

    def alive(self) -> bool:
        return self.process.poll() is None

    def session(self, options: dict, run_candidate: Callable[[int], object]) -> tuple[dict, object]:
        """Run one candidate: run_candidate(fd) starts it with fd as its stdin and returns once its whole process
        tree is dead. Returns (the judge's outcome, run_candidate's result)."""
        sid = str(next(self._sids))
        judge_end, candidate_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        future: Future = Future()
        self._pending[sid] = future
        try:
            try:
                self._tell({"op": "judge", "sid": sid, "options": options}, [judge_end.fileno()])
            finally:
                judge_end.close()
            try:
                result = run_candidate(candidate_end.fileno())
            finally:
                candidate_end.close()
            self._tell({"op": "close", "sid": sid})
            try:
                return future.result(timeout=_OUTCOME_GRACE_S), result
            except TimeoutError as err:
                raise JudgeGone("the judge did not answer for a finished candidate") from err
        finally:
            self._pending.pop(sid, None)

    def _tell(self, message: dict, fds: list[int] | None = None) -> None:
        try:
            with self._send_lock:
                wire.send(self._control, message, fds or [])
        except (OSError, wire.WireError) as err:
            raise JudgeGone(f"the judge process is gone: {err}") from err

    def _read_outcomes(self) -> None:
        while True:
            try:
                message, fds = wire.receive(self._control, limit=1 << 24)
            except (wire.WireError, OSError):
                break
            for fd in fds:
                os.close(fd)
            future = self._pending.get(str(message.get("sid")))
            if future is not None and not future.done():
                future.set_result(message.get("outcome", {}))
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(JudgeGone("the judge process ended during a session"))

    def close(self) -> None:
        # shutdown, not only close: our reader thread is blocked in recv on this socket, and a close alone would
        # neither wake it nor let the judge see EOF until that recv returned (it waited 10 s, then was killed).
        for end in (lambda: self._control.shutdown(socket.SHUT_RDWR), self._control.close):
            try:
                end()
            except OSError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ------------------------------------------------------------------------------------------------------------------
# One judge per reference and GPU, per process


_judges: dict[tuple[str, str | None], Judge] = {}
_judges_lock = threading.Lock()


def judge_key(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def judge_for(config: dict, *, workdir: Path, env: dict[str, str], gpu: str | None, ready_timeout_s: float) -> Judge:
    """The live judge for this reference configuration on this GPU (None: CPU or the only one), started if needed."""
    key = (judge_key(config), gpu)
    with _judges_lock:
        judge = _judges.get(key)
        if judge is not None and judge.alive():
            return judge
        suffix = f"-gpu{gpu}" if gpu is not None else ""
        judge = Judge(config, Path(workdir) / f"judge-{key[0]}{suffix}", env, ready_timeout_s)
        _judges[key] = judge
        return judge


def release(config: dict) -> int:
    """Close every judge of this reference configuration (a finished run's), on every GPU; returns how many."""
    key = judge_key(config)
    with _judges_lock:
        mine = [k for k in _judges if k[0] == key]
        judges = [_judges.pop(k) for k in mine]
    for judge in judges:
        judge.close()
    return len(judges)


def forget(judge: Judge) -> None:
    """Drop a judge that failed, so the next call starts a fresh one."""
    with _judges_lock:
        for key, value in list(_judges.items()):
            if value is judge:
                del _judges[key]
    judge.close()


@atexit.register
def _close_all() -> None:
    with _judges_lock:
        judges = list(_judges.values())
        _judges.clear()
    for judge in judges:
        judge.close()
