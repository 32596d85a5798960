"""Child side of the warm pool: a fork server that imports torch and triton once, then forks one sandboxed run per request.

Run as ``python -m kernelagent.sandbox.forkserver CONTROL_FD CONFIG_JSON`` (warm.py does it). It must never touch CUDA.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import types

from kernelagent.sandbox.reaper import (
    _PR_SET_CHILD_SUBREAPER,
    FolderWatch,
    MemoryWatch,
    _exited_children,
    _kill_exact,
    _libc,
    _netns_id,
    _read_stat,
    _reap_exited_children,
    apply_limits_in_child,
    end_of_run_status,
    isolation_report,
    kill_all_descendants,
    kill_uid,
    read_isolation_report,
    tasks_watched,
)
from kernelagent.sandbox.runner import _MARKER_VAR, _without_secrets
from kernelagent.sandbox.warm import MARKER_PLACEHOLDER, MAX_MESSAGE_BYTES

_ESCAPEE_DEADLINE_S = 5.0


# --------------------------------------------------------------------------- the server


def main(argv: list[str]) -> int:
    control = socket.socket(fileno=int(argv[1]))
    config = json.loads(argv[2])
    wake_r = _install_wakeup_handlers()
    # Candidates whose supervisor died are re-parented to us instead of init, so we can still kill them.
    _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        info = _preload(config["preload"])
        _send_json(control, {"event": "ready", **info})
        _serve(control, wake_r, _interpreter_path())
    finally:
        kill_all_descendants()  # the agent is gone or asked us to stop: nothing we started may outlive us
    return 0


def _interpreter_path() -> list[str]:
    """sys.path without what this server's start added (its cwd and PYTHONPATH); each run adds its own instead."""
    boot_entries = set(os.environ.get("PYTHONPATH", "").split(os.pathsep))
    return [entry for entry in sys.path[1:] if entry not in boot_entries]


def _install_wakeup_handlers() -> int:
    """SIGCHLD and SIGTERM wake poll() through a self-pipe; SIGTERM then ends the server (and its runs) cleanly."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, _ignore_signal)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    return wake_r


def _ignore_signal(signum: int, frame: object) -> None:
    pass  # only here so the wakeup fd gets written


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _preload(modules: list[str]) -> dict:
    """Import what every run needs. CUDA must stay uninitialised: a forked child cannot use a parent's CUDA context,
    and each run picks its GPU through CUDA_VISIBLE_DEVICES, which CUDA reads only when it initialises."""
    started = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise RuntimeError("CUDA was initialised while preloading; forked runs could not use the GPU")
    return {
        "pid": os.getpid(),
        "import_s": round(time.perf_counter() - started, 3),
        "cuda_driver_loaded": _has_libcuda(),
    }


def _has_libcuda() -> bool:
    try:
        with open("/proc/self/maps") as maps:
            return "libcuda.so" in maps.read()
    except OSError:
        return False


def _serve(control: socket.socket, wake_r: int, boot_path: list[str]) -> None:
    supervisors: set[int] = set()
    poller = select.poll()
    poller.register(control, select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                _drain(wake_r)
                if _reap_children(supervisors):
                    _kill_escapees(supervisors)
                continue
            request, fds = _receive_request(control)
            if request is None:
                return  # EOF: the agent closed the pool or died
            if not fds:
                continue
            try:
                supervisors.add(_fork_supervisor(request, fds, control, wake_r, boot_path))
            finally:
                for fd in fds:
                    os.close(fd)


def _drain(fd: int) -> None:
    os.set_blocking(fd, False)
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _receive_request(control: socket.socket) -> tuple[dict | None, list[int]]:
    """(request, [reply fd, stdout fd, stderr fd, stdin fd if any]); (None, []) at EOF; ({}, []) for a malformed
    message, which is dropped."""
    data, fds, flags, _ = socket.recv_fds(control, MAX_MESSAGE_BYTES, 4)
    if not data and not fds:
        return None, []
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) < 3:
            raise ValueError("truncated request")
        return json.loads(data), fds
    except ValueError:
        for fd in fds:
            os.close(fd)  # the client sees EOF before "started" and retries
        return {}, []


def _reap_children(supervisors: set[int]) -> bool:
    """Reap every exited child; True if anything but a supervisor's clean exit happened (escapees may exist)."""
    suspicious = False
    for pid, status in _exited_children():
        if pid in supervisors:
            supervisors.discard(pid)
            suspicious |= status != 0  # a supervisor exits 0 only after it killed its whole tree
        else:
            suspicious = True  # an orphan of a dead supervisor ended here: its relatives may still run
    return suspicious


def _kill_escapees(supervisors: set[int]) -> None:
    """Kill every process below us that no live supervisor owns: the leftovers of a supervisor that was killed."""
    deadline = time.monotonic() + _ESCAPEE_DEADLINE_S
    while time.monotonic() < deadline:
        _reap_children(supervisors)
        escapees = _live_descendants(os.getpid(), skip=supervisors)
        if not escapees:
            return
        for pid, start_time in escapees.items():
            _kill_exact(pid, start_time)
        time.sleep(0.001)


def _live_descendants(root: int, skip: set[int]) -> dict[int, int]:
    """pid -> start time of every non-zombie process below root, leaving out the subtrees rooted at `skip`."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[bytes, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _read_stat(int(name))) is not None:
            children.setdefault(stat[0], []).append(int(name))
            info[int(name)] = (stat[1], stat[2])
    live: dict[int, int] = {}
    stack = [pid for pid in children.get(root, ()) if pid not in skip]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, ()))
        state, start_time = info[pid]
        if state != b"Z":
            live[pid] = start_time
    return live


def _send_json(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


# --------------------------------------------------------------------------- one run: supervisor + candidate


def _fork_supervisor(request: dict, fds: list[int], control: socket.socket, wake_r: int, boot_path: list[str]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        control.close()  # a run must never be able to submit runs of its own
        os.close(wake_r)
        reply_fd, out_fd, err_fd, *stdin = fds
        reply = socket.socket(fileno=reply_fd)
        code = _supervise_run(request, reply, boot_path, (out_fd, err_fd), stdin[0] if stdin else None)
    except BaseException:  # noqa: B036 - a forked child must end here, whatever happened
        traceback.print_exc()
        kill_all_descendants()
    finally:
        os._exit(code)


def _supervise_run(
    request: dict, reply: socket.socket, boot_path: list[str], capture: tuple[int, int], stdin_fd: int | None = None
) -> int:
    """The warm twin of reaper.run_reaper: run the candidate, wait (bounded), kill whatever is left, report."""
    os.setsid()  # our own group: a candidate killing its parent's group must not take the server with it
    # Before the candidate exists: from here on, a hang-up means "this run's supervisor died", never "the server
    # did not take the run" (which the client answers with a restart and a retry).
    _send_json(reply, {"event": "started", "supervisor_pid": os.getpid()})
    wake_r, stop = _supervisor_signals()
    stamp_marker(request["token"])
    _libc().prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # daemons and setsid'd grandchildren stay below us
    limits = types.SimpleNamespace(**request["limits"])
    pid, facts = _fork_candidate(request, limits, reply, boot_path, capture, stdin_fd)
    if stdin_fd is not None:
        os.close(stdin_fd)  # the candidate's alone now: its end closes when its tree dies
    deadline = time.monotonic() + limits.timeout_s
    # The candidate's tree: all below us.
    watch = MemoryWatch(os.getpid(), getattr(limits, "rss_bytes", None), tasks_watched(limits, facts))
    folder = FolderWatch(request["cwd"], getattr(limits, "folder_bytes", None), tree_root=os.getpid(), held=capture)
    wait_status, why = _wait_for_candidate(pid, reply, wake_r, stop, deadline, watch, folder)
    leftovers = kill_all_descendants(exclude_pid=pid)
    kill_uid(getattr(limits, "run_as_uid", None))
    status = end_of_run_status(wait_status, why, watch, folder, leftovers, facts)
    try:
        _send_json(reply, {"event": "status", "status": status})
    except OSError:
        pass  # the client gave up on us; everything is dead anyway
    return 0


def _supervisor_signals() -> tuple[int, threading.Event]:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    server_wake_w = signal.set_wakeup_fd(wake_w)
    if server_wake_w >= 0:
        os.close(server_wake_w)  # the server's; a candidate must inherit nothing of the server's
    stop = threading.Event()
    signal.signal(signal.SIGCHLD, _ignore_signal)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())  # like the cold reaper: SIGTERM means "stop now"
    return wake_r, stop


def stamp_marker(token: str) -> bool:
    """Write token over the boot environment's marker placeholder, in this process's original environ block.

    Forked processes keep that block (what /proc/PID/environ shows) whatever os.environ says later, so this is what
    lets runner._kill_marked_processes find a run's processes. False when the placeholder is missing.
    """
    needle = f"{_MARKER_VAR}={MARKER_PLACEHOLDER}".encode()
    if len(token) != len(MARKER_PLACEHOLDER):
        return False
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        env_start = int(stat[stat.rindex(b")") + 2 :].split()[47])  # field 50 of proc(5): env_start
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
        if block.startswith(needle):
            offset = 0
        elif (at := block.find(b"\0" + needle)) >= 0:
            offset = at + 1
        else:
            return False
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(env_start + offset + len(_MARKER_VAR) + 1)
            mem.write(token.encode())
    except (OSError, ValueError, IndexError):
        return False
    return True


def _fork_candidate(
    request: dict,
    limits: types.SimpleNamespace,
    reply: socket.socket,
    boot_path: list[str],
    capture: tuple[int, int],
    stdin_fd: int | None,
) -> tuple[int, dict]:
    """Fork the candidate with limits applied, its stdout and stderr the capture files the client opened (kept
    open here for the folder quota); return (pid, its confinement record) as the candidate itself observed it."""
    own_netns = _netns_id()
    out_fd, err_fd = capture
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _candidate_child(request, limits, own_netns, (out_fd, err_fd, report_w, stdin_fd), reply, boot_path)
    os.close(report_w)
    report = b""  # written right after the limits were applied; EOF once the child closed its descriptors or died
    while chunk := os.read(report_r, 4096):
        report += chunk
    os.close(report_r)
    return pid, read_isolation_report(report)


def _wait_for_candidate(
    pid: int,
    reply: socket.socket,
    wake_r: int,
    stop: threading.Event,
    deadline: float,
    watch: MemoryWatch,
    folder: FolderWatch,
) -> tuple[int | None, str]:
    """(wait status, "exited"), or (None, why) on timeout, SIGTERM or hang-up ("stopped"), too much memory
    ("memory") or a folder over its quota ("disk"); after None we just clean up."""
    poller = select.poll()
    poller.register(wake_r, select.POLLIN)
    poller.register(reply, select.POLLIN)  # the client never writes here: readable means it closed its end
    while not stop.is_set():
        status = _reap_exited_children(pid)
        if status is not None:
            return status, "exited"
        if watch.over():
            return None, "memory"
        if folder.over():
            return None, "disk"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "stopped"
        for fd, _ in poller.poll(min(watch.wait_s(remaining), folder.wait_s(remaining)) * 1000):
            if fd == reply.fileno():
                return None, "stopped"
            _drain(wake_r)
    return None, "stopped"


def _candidate_child(
    request: dict,
    limits: types.SimpleNamespace,
    own_netns: str,
    fds: tuple[int, int, int, int | None],
    reply: socket.socket,
    boot_path: list[str],
) -> None:
    """Become `python -m module args` under the run's limits and env. Never returns."""
    out_fd, err_fd, report_w, stdin_fd = fds
    try:
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        # Before the sweep below: Python would otherwise write signal bytes into whatever file reuses that number.
        signal.set_wakeup_fd(-1)
        reply.close()  # the candidate must not be able to forge its own status
        os.setsid()
        _redirect_stdio(out_fd, err_fd, stdin_fd)
        facts = apply_limits_in_child(limits)
        os.write(report_w, isolation_report(own_netns, facts))
        _close_all_but_stdio()
        _adopt_environment(request["env"], request["cwd"], boot_path)
    except BaseException as exc:  # noqa: B036 - nothing may escape a forked child
        try:
            os.write(2, f"sandbox: cannot start {request.get('module')!r}: {exc!r}\n".encode())
        finally:
            os._exit(126)
    code = run_module_as_main(request["module"], request["args"])
    os._exit(code)


def _close_all_but_stdio() -> None:
    """The candidate inherits stdin, stdout and stderr only. A sweep rather than a list of our own descriptors: on
    the GPU machine (Python 3.12) candidates still saw the server's wake-up pipe and another pipe after the named
    ones were closed; a list cannot know what a launcher, an import or a Python version leaves open."""
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor is already closed
                os.close(int(name))


def _redirect_stdio(out_fd: int, err_fd: int, stdin_fd: int | None = None) -> None:
    source_in = os.open(os.devnull, os.O_RDONLY) if stdin_fd is None else stdin_fd
    for source, target in ((source_in, 0), (out_fd, 1), (err_fd, 2)):
        if source != target:
            os.dup2(source, target)
            os.close(source)
    # Like PYTHONUNBUFFERED: output printed just before a timeout kill must not die in a buffer.
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = sys.__stdout__ = _unbuffered_text(1, "strict")
    sys.stderr = sys.__stderr__ = _unbuffered_text(2, "backslashreplace")


def _unbuffered_text(fd: int, errors: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors=errors, write_through=True)


def _adopt_environment(env: dict[str, str], cwd: str, boot_path: list[str]) -> None:
    """Make this process look like a fresh interpreter started with env in cwd, as far as Python can tell."""
    os.environ.clear()  # unsetenv for each: C code (Triton's getenv, CUDA) sees the new environment too
    os.environ.update(_without_secrets(env))  # already scrubbed by the client; scrubbed again, cheaply
    os.chdir(cwd)
    sys.path[:] = _python_path(cwd, env.get("PYTHONPATH", ""), boot_path)
    importlib.invalidate_caches()
    tempfile.tempdir = None  # re-read TMPDIR
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    _apply_thread_count(env)


def _python_path(cwd: str, pythonpath: str, boot_path: list[str]) -> list[str]:
    """sys.path of `python -m` started in cwd with this PYTHONPATH: cwd, PYTHONPATH, then the interpreter's own."""
    requested = [entry for entry in pythonpath.split(os.pathsep) if entry]
    base = [entry for entry in boot_path if entry not in requested]
    return [cwd, *requested, *base]


def _apply_thread_count(env: dict[str, str]) -> None:
    # OpenMP reads OMP_NUM_THREADS when torch is loaded, i.e. in the server, which boots without it.
    torch = sys.modules.get("torch")
    value = env.get("OMP_NUM_THREADS", "")
    if torch is not None and value.isdigit() and int(value) > 0:
        torch.set_num_threads(int(value))


def run_module_as_main(module: str, args: list[str]) -> int:
    """Run module as `python -m module args` would, up to and including interpreter shutdown; return the exit status."""
    sys.argv = [module, *args]
    # The server imported it only to warm its dependencies; runpy warns when a module to run is already imported.
    sys.modules.pop(module, None)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    except BaseException:  # noqa: B036 - an uncaught exception ends `python -m` with a traceback and status 1
        sys.excepthook(*sys.exc_info())
        code = 1
    _shut_down_like_the_interpreter()
    return code


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _shut_down_like_the_interpreter() -> None:
    # The same steps Py_Finalize takes before it exits: join non-daemon threads, run atexit hooks, flush stdio.
    for step in (getattr(threading, "_shutdown", None), atexit._run_exitfuncs):
        try:
            if step is not None:
                step()
        except BaseException:  # noqa: B036, S110 - shutdown must reach os._exit
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: B036, S110
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
