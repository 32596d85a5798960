"""Warm sandboxed runs: fork servers that import torch and triton once, so a verification skips the per-process import.

Same limits, secret-free env and whole-tree cleanup as run_sandboxed; the child side lives in forkserver.py.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from kernelagent.sandbox.runner import (
    _MARKER_VAR,
    _STOP_GRACE_S,
    SandboxLimits,
    SandboxResult,
    _child_env,
    _kill_marked_processes_and_wait,
    _read_tail,
    _result_from,
    capture_files,
    is_interpret_env,
    prepared_run,
    run_sandboxed,
    scrubbed_env,
)

__all__ = ["DEFAULT_PRELOAD", "WarmPool", "WarmPoolError", "run_sandboxed_warm", "shared_pool"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# What verification children import; runs of other modules work too, they just import the rest themselves.
DEFAULT_PRELOAD = (
    "torch",
    "triton",
    # Imported lazily by the first Triton launch under a TorchDispatchMode: ~1.3 s (dynamo) + ~40 ms (code generator).
    "torch._dynamo",
    "triton.compiler.code_generator",
    "kernelagent.verify.runtime_guard",
    "kernelagent.verify.loading",
    "kernelagent.verify.candidate_runner",
    "kernelagent.verify.test_runner",
)
# Read by a library when it is loaded (i.e. in the server), or chosen per run: never baked into a server.
_PER_RUN_VARS = (
    "TRITON_INTERPRET",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "HOME",
    "TMPDIR",
)
# Boot environments carry this placeholder; each run's supervisor overwrites it in place with the run's token (same
# length as runner's tokens), so /proc/PID/environ names the run even for processes that only fork and never exec.
MARKER_PLACEHOLDER = "_" * 16
MAX_MESSAGE_BYTES = 1 << 17
# A healthy server forks a run within milliseconds; one that has not after this long is hung or dead.
_START_DEADLINE_S = 10.0
_SHUTDOWN_GRACE_S = 6.0


class WarmPoolError(RuntimeError):
    """The fork server could not be started, or did not take a run even after a restart."""


class WarmPool:
    """Fork servers for one Triton mode (interpreter or GPU); run_module mirrors run_sandboxed for `python -m`.

    Thread-safe: concurrent calls each get their own forked, sandboxed child. Servers start at construction (in the
    background) and are restarted when they die. The servers never initialise CUDA, so each run may pick its GPU
    with CUDA_VISIBLE_DEVICES in its env.
    """

    def __init__(
        self,
        *,
        interpret: bool,
        size: int = 1,
        python: str = sys.executable,
        preload: Sequence[str] = DEFAULT_PRELOAD,
        boot_timeout_s: float = 300.0,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one server")
        self.interpret = interpret
        self._python = python
        self._workdir = Path(tempfile.mkdtemp(prefix="kernelagent-warm-"))
        self._servers = [
            _ForkServer(
                python,
                _boot_env(interpret, self._workdir),
                list(preload),
                self._workdir / f"server{i}.log",
                boot_timeout_s,
            )
            for i in range(size)
        ]
        self._turn = itertools.count()
        self._closed = False

    def run_module(
        self,
        module: str,
        args: Sequence[str] = (),
        *,
        cwd: Path,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing the default is safe
        env: Mapping[str, str] | None = None,
        stdin_fd: int | None = None,
    ) -> SandboxResult:
        """Run `python -m module *args` in cwd under limits and return once it and everything it started are dead.

        env is treated exactly as run_sandboxed treats it (scrubbed, HOME/TMPDIR in cwd, marker added). Its
        TRITON_INTERPRET must agree with this pool's mode: the server's imports were made in that mode. stdin_fd
        (e.g. the judge's socket) becomes the run's standard input; by default it reads /dev/null.
        """
        if self._closed:
            raise WarmPoolError("the pool is closed")
        cwd = Path(cwd).resolve()
        child_env = _child_env(cwd, env)
        if is_interpret_env(child_env) != self.interpret:
            raise ValueError(f"TRITON_INTERPRET in env does not match this pool (interpret={self.interpret})")
        with prepared_run(limits, cwd, child_env) as (limits, uid_note), capture_files() as (out, err):
            token = child_env[_MARKER_VAR]
            request = _encode_request(module, args, cwd, limits, child_env)
            status, started = self._submit_and_wait(request, token, limits.timeout_s, (out, err), stdin_fd)
            wall_s = time.monotonic() - started
            stdout = _read_tail(out, limits.output_limit_bytes)
            stderr = _read_tail(err, limits.output_limit_bytes)
        return _result_from(status, None, stdout, stderr, wall_s, uid_note)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008
        env: Mapping[str, str] | None = None,
        stdin_fd: int | None = None,
    ) -> SandboxResult:
        """run_sandboxed's signature, for argv of the form [python, "-m", module, *args]."""
        module, args = _module_and_args(argv, self._python)
        if module is None:
            raise ValueError(f"a warm pool only runs `python -m module ...`, not {list(argv)[:3]}")
        return self.run_module(module, args, cwd=cwd, limits=limits, env=env, stdin_fd=stdin_fd)

    def warm_up(self) -> None:
        """Block until every server has finished its imports (raises WarmPoolError if one cannot start)."""
        for server in self._servers:
            server.ensure_ready()

    def close(self) -> None:
        """Stop the servers; each kills every run it still has before it exits."""
        self._closed = True
        for server in self._servers:
            server.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit_and_wait(
        self, request: bytes, token: str, timeout_s: float, capture: tuple[int, int], stdin_fd: int | None = None
    ) -> tuple[dict | None, float]:
        """Hand the run to a server and wait for its status; retry once on a fresh server if it never started."""
        for _attempt in range(2):
            server = self._servers[next(self._turn) % len(self._servers)]
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                with theirs:
                    generation = server.submit(request, [theirs.fileno(), *capture], stdin_fd)
                started = time.monotonic()
                ran, status = _await_status(mine, started, timeout_s, token, server.pid)
            finally:
                mine.close()
            if ran:
                return status, started
            server.restart(generation)  # dead or hung: its in-flight runs keep their own supervisors
        raise WarmPoolError("the fork server did not start the run, even after a restart")


def _boot_env(interpret: bool, workdir: Path) -> dict[str, str]:
    """The server's env: scrubbed like any child's, minus what each run sets for itself, plus the marker placeholder."""
    env = {name: value for name, value in scrubbed_env().items() if name not in _PER_RUN_VARS}
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    inherited = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *inherited])
    env["HOME"] = env["TMPDIR"] = str(workdir)
    env[_MARKER_VAR] = MARKER_PLACEHOLDER
    return env


def _encode_request(
    module: str,
    args: Sequence[str],
    cwd: Path,
    limits: SandboxLimits,
    env: dict[str, str],
) -> bytes:
    request = {
        "module": module,
        "args": [os.fspath(arg) for arg in args],
        "cwd": str(cwd),
        "limits": asdict(limits),
        "env": env,
        "token": env[_MARKER_VAR],
    }
    data = json.dumps(request).encode()
    if len(data) > MAX_MESSAGE_BYTES // 2:
        raise ValueError(f"request too large for the fork server ({len(data)} bytes): trim env or args")
    return data


def _await_status(
    sock: socket.socket, started: float, timeout_s: float, token: str, server_pid: int | None
) -> tuple[bool, dict | None]:
    """(whether the run started, its status). No status means the supervisor died or hung: sweep by marker."""
    run_deadline = started + timeout_s + _STOP_GRACE_S  # the supervisor enforces timeout_s itself
    ran = False
    try:
        while True:
            deadline = run_deadline if ran else min(run_deadline, started + _START_DEADLINE_S)
            message = _receive(sock, deadline)
            if message is None or message.get("event") == "status":
                break
            ran = ran or message.get("event") == "started"
    except BaseException:
        sock.close()  # the supervisor sees the hang-up and kills the run's tree
        _kill_marked_processes_and_wait(token, server_pid)
        raise
    if message is not None:
        return True, message["status"]
    if not ran:
        return False, None
    timed_out = time.monotonic() >= run_deadline
    sock.close()
    return True, {"leftovers_killed": _kill_marked_processes_and_wait(token, server_pid), "stopped": timed_out}


def _receive(sock: socket.socket, deadline: float) -> dict | None:
    """The next message, or None at EOF or when the deadline passes."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    sock.settimeout(remaining)
    try:
        data = sock.recv(MAX_MESSAGE_BYTES)
    except TimeoutError:
        return None
    return json.loads(data) if data else None


def _module_and_args(argv: Sequence[str], python: str = sys.executable) -> tuple[str | None, list[str]]:
    """(module, args) of `python -m module *args`, or (None, []) for any other command."""
    argv = [os.fspath(arg) for arg in argv]
    if len(argv) >= 3 and argv[1] == "-m" and Path(argv[0]).resolve() == Path(python).resolve():
        return argv[2], argv[3:]
    return None, []


class _ForkServer:
    """One server process and its control socket; (re)started under a lock shared by every submitting thread."""

    def __init__(self, python: str, env: dict[str, str], preload: list[str], log_path: Path, boot_timeout_s: float):
        self._python, self._env, self._preload = python, env, preload
        self._log_path, self._boot_timeout_s = log_path, boot_timeout_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._ready = False
        self._generation = 0
        self.info: dict = {}
        with self._lock:
            self._spawn()

    def submit(self, request: bytes, fds: list[int], stdin_fd: int | None = None) -> int:
        """Send one run (fds: its reply socket, stdout and stderr files) to the server, (re)starting it if needed;
        return the generation of the server that took it."""
        with self._lock:
            for attempt in range(2):
                if self._proc is None or self._proc.poll() is not None:
                    self._respawn()
                self._wait_ready()
                try:
                    socket.send_fds(self._control, [request], fds if stdin_fd is None else [*fds, stdin_fd])
                    return self._generation
                except OSError:  # EPIPE/ECONNRESET: the server died since we last looked
                    if attempt:
                        raise
                    self._respawn()
        raise AssertionError("unreachable")

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def ensure_ready(self) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._respawn()
            self._wait_ready()

    def restart(self, generation: int) -> None:
        """Replace the server that failed a run, unless another thread already did."""
        with self._lock:
            if generation == self._generation:
                self._respawn()

    def close(self) -> None:
        with self._lock:
            self._stop(graceful=True)

    def _spawn(self) -> None:
        control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        config = {"preload": self._preload}
        argv = [self._python, "-m", "kernelagent.sandbox.forkserver", str(theirs.fileno()), json.dumps(config)]
        with theirs, open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(
                argv,
                cwd=self._env["HOME"],
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # a Ctrl-C meant for the agent must not kill runs mid-way
            )
        self._control, self._ready = control, False
        self._generation += 1

    def _wait_ready(self) -> None:
        if self._ready:
            return
        message = _receive(self._control, time.monotonic() + self._boot_timeout_s)
        if not message or message.get("event") != "ready":
            self._stop(graceful=False)
            raise WarmPoolError(f"the fork server did not start:\n{_read_tail(self._log_path, 3000)}")
        self.info, self._ready = message, True
        self._control.settimeout(None)

    def _respawn(self) -> None:
        # SIGKILL, not EOF: an EOF'd server kills every run it has, and other threads' runs are still fine (each has
        # its own supervisor, in its own session, that reports straight to its caller).
        self._stop(graceful=False)
        self._spawn()

    def _stop(self, *, graceful: bool) -> None:
        proc, control = self._proc, self._control
        self._proc, self._control = None, None
        if proc is not None and not graceful:
            _kill_group(proc.pid)  # before the EOF below, which would make it kill its runs first
        if control is not None:
            control.close()  # EOF: the server kills its runs and exits
        if proc is None:
            return
        try:
            proc.wait(_SHUTDOWN_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()


def _kill_group(pgid: int) -> None:
    """SIGKILL a server's process group: the server alone, since every run's supervisor has a session of its own."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_shared: dict[bool, WarmPool] = {}
_shared_lock = threading.Lock()


def shared_pool(interpret: bool) -> WarmPool:
    """The process-wide pool for one Triton mode, started on first use and closed at exit."""
    with _shared_lock:
        pool = _shared.get(interpret)
        if pool is None:
            if not _shared:
                atexit.register(_close_shared_pools)
            pool = _shared[interpret] = WarmPool(interpret=interpret)
        return pool


def _close_shared_pools() -> None:
    with _shared_lock:
        for pool in _shared.values():
            pool.close()
        _shared.clear()


def run_sandboxed_warm(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008
    env: Mapping[str, str] | None = None,
    stdin_fd: int | None = None,
) -> SandboxResult:
    """Drop-in for run_sandboxed: `sys.executable -m module ...` runs in the shared pool of env's Triton mode, anything
    else (or everything, with KERNELAGENT_WARM_POOL=0) runs cold."""
    module, args = _module_and_args(argv)
    if module is None or os.environ.get("KERNELAGENT_WARM_POOL", "1") == "0":
        return run_sandboxed(argv, cwd=cwd, limits=limits, env=env, stdin_fd=stdin_fd)
    interpret = is_interpret_env(scrubbed_env() if env is None else dict(env))
    return shared_pool(interpret).run_module(module, args, cwd=cwd, limits=limits, env=env, stdin_fd=stdin_fd)
