"""Run an untrusted command (e.g. a generated kernel's test) isolated: scrubbed env, rlimits, no network, bounded output,
and no process left alive afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kernelagent.sandbox import filesystem
from kernelagent.sandbox.filesystem import confinement_rules, libcuda_folder, program_loader
from kernelagent.sandbox.identity import reveal_plan, run_identity
from kernelagent.sandbox.reaper import apply_limits_in_child, cpu_seconds_for, memory_note
from kernelagent.sandbox.sizing import run_memory_bytes

__all__ = [
    "SandboxLimits",
    "SandboxResult",
    "apply_limits_in_child",
    "cpu_seconds_for",
    "run_sandboxed",
    "scrubbed_env",
]

_REAPER = Path(__file__).with_name("reaper.py")
_EXEC_LAYER = Path(__file__).with_name("exec_layer.py")
# The reaper needs at most reaper._CLEANUP_DEADLINE_S to kill and reap everything after SIGTERM.
_STOP_GRACE_S = 8.0
# Extra time the reaper waits on its own before giving up on a silent parent.
_REAPER_BACKSTOP_S = 10.0
# Every sandboxed process carries this variable, so a last-resort sweep can find escapees if the reaper itself died.
_MARKER_VAR = "KERNELAGENT_SANDBOX_ID"

_TRUE_WORDS = frozenset({"1", "true", "on", "yes", "y"})
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|COOKIE|SESSION", re.IGNORECASE)
_ALLOWED_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONFAULTHANDLER",
        "VIRTUAL_ENV",
        "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_HOME",
        "CUDA_PATH",
        "CUDA_LAUNCH_BLOCKING",
        "CUDA_DEVICE_ORDER",
        "CUDA_MODULE_LOADING",
        "CUBLAS_WORKSPACE_CONFIG",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    }
)
_ALLOWED_PREFIXES = ("LC_", "NVIDIA_", "TRITON_", "TORCH_", "PYTORCH_")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits for one sandboxed run. All of them are inherited by everything the command starts."""

    timeout_s: float = 120.0  # wall clock; on expiry the whole process tree is killed (SIGKILL)
    cpu_time_s: int | None = None  # RLIMIT_CPU; None -> timeout_s * usable cores + 10 (see cpu_seconds_for)
    # RLIMIT_AS, applied only when apply_memory_limit is true: CUDA reserves huge virtual address space at init, so an
    # address-space cap breaks GPU runs; callers set apply_memory_limit=False for them. None means no cap.
    memory_bytes: int | None = None
    apply_memory_limit: bool = True
    # Host-memory watchdog, which works where RLIMIT_AS cannot (GPU runs): the resident memory (anonymous + shmem) of
    # the whole process tree is summed every ~50 ms and the tree is killed when it is over (SandboxResult.
    # memory_exceeded). A poll, not a hard cap: a fast allocator may overshoot by what it touches in one interval.
    rss_bytes: int | None = field(default_factory=run_memory_bytes)  # a share of this host's memory (sizing.py)
    file_size_bytes: int = 2 * 1024**3  # RLIMIT_FSIZE; also bounds the captured stdout/stderr files
    open_files: int = 1024  # RLIMIT_NOFILE
    # New network namespace when the OS allows it (root or unprivileged user namespaces); otherwise the run goes on
    # with the host network and SandboxResult.network_isolated is False.
    isolate_network: bool = True
    # A SysV IPC namespace of its own (shared memory, semaphores, message queues die with the run); where the OS
    # refuses it, SandboxResult.confinement["ipc_isolated"] is False. Legacy CUDA IPC is not SysV IPC (what a GPU
    # run needs of it: benchmarks/cuda_confinement_probe.py, its "ipc" step); False turns it off.
    isolate_ipc: bool = True
    # Landlock, where the kernel has it (5.13+): the run reads only the system, the Python installation and the import
    # path, and writes only its folder and caches (filesystem.confinement_rules, filled in per run); otherwise
    # SandboxResult.filesystem_confined is False. Off for the user's own reference, which may read data files.
    confine_filesystem: bool = True
    readable_paths: tuple[str, ...] = ()
    writable_paths: tuple[str, ...] = ()
    # Confined with what CUDA needs as well (filesystem.gpu_rules). None: decided per run from its env (a run that
    # does not select Triton's interpreter and has a GPU to see is a GPU run: gpu_run).
    gpu: bool | None = None
    # The run lends tensors to another as memfds (test mode's test process): it may create memfds, which other CPU
    # runs may not (unmapped memfd pages escape the host-memory watchdog, reaper.seccomp_program).
    lends_memory: bool = False
    # Where the agent is root: the run becomes a uid of its own (identity.run_identity; filled in per run as
    # run_as_uid), so the kernel, not our rules, keeps it from other processes, device nodes and capabilities.
    # None: True except for GPU runs, which must keep the judge's uid (legacy CUDA IPC fails between uids).
    unprivileged: bool | None = None
    run_as_uid: int | None = None
    reveal: tuple = ()  # (closed folder, (needed paths below it)): identity.reveal_plan, filled in per run
    hidden: tuple = ()  # root-only files masked for a confined run that keeps root (filesystem.root_only_paths)
    # RLIMIT_NPROC for that uid (processes and threads); None -> max(256, 4 x usable cores). Only with run_as_uid:
    # root is exempt from it.
    max_tasks: int | None = None
    # Total size of the run's folder (RLIMIT_FSIZE above is per file): polled, the tree is killed once over.
    folder_bytes: int | None = 1024**3
    output_limit_bytes: int = 1_000_000  # tail of stdout/stderr kept per stream


@dataclass
class SandboxResult:
    returncode: int | None  # None when killed on timeout; -N when killed by signal N
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    signal_name: str | None  # e.g. "SIGKILL", "SIGSEGV" when the command died by a signal
    leftovers_killed: int  # processes the command left behind (daemons, setsid'd grandchildren) that we killed
    network_isolated: bool
    memory_exceeded: bool = False  # killed by the host-memory watchdog (SandboxLimits.rss_bytes)
    tasks_exceeded: bool = False  # killed for running more tasks than max_tasks (where RLIMIT_NPROC cannot bound it)
    rss_peak_bytes: int | None = None  # largest summed resident memory the watchdog sampled; None when not watched
    filesystem_confined: bool = False  # Landlock took effect (SandboxLimits.confine_filesystem)
    disk_exceeded: bool = False  # killed for filling its folder (SandboxLimits.folder_bytes)
    # What the child observed it got: landlock_abi, scopes (signal, abstract_unix_socket), uid, max_tasks,
    # capabilities (CapEff), and uid_note (why the uid is what it is).
    confinement: dict = field(default_factory=dict)

    def tail(self, n_chars: int = 4000) -> str:
        """Last n_chars of stderr and stdout (stderr gets any budget stdout does not need), for error reports."""
        stdout_budget = min(len(self.stdout), n_chars // 2)
        stderr_budget = min(len(self.stderr), n_chars - stdout_budget)
        stdout_budget = min(len(self.stdout), n_chars - stderr_budget)
        parts = [self._outcome()]
        for name, text, budget in (("stderr", self.stderr, stderr_budget), ("stdout", self.stdout, stdout_budget)):
            if text and budget > 0:
                parts.append(f"--- {name} ---\n{text[-budget:]}")
        return "\n".join(part for part in parts if part)

    def _outcome(self) -> str:
        if self.disk_exceeded:
            return "[killed: the run's folder grew past its quota]"
        if self.memory_exceeded:
            return "[killed: the process tree used too much host memory]"
        if self.tasks_exceeded:
            return "[killed: the process tree ran too many processes and threads]"
        if self.timed_out:
            return f"[timed out after {self.wall_s:.1f}s; process tree killed]"
        if self.signal_name:
            return f"[killed by {self.signal_name}]"
        return ""


def write_into_candidate_folder(path: Path, text: str) -> None:
    """Write a file of ours into a folder a candidate could write: whatever it left at that name (a symlink to a
    file elsewhere, say) is removed first, and the new file is created without following links."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        shutil.rmtree(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
        out.write(text)


def scrubbed_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Child environment: allowlisted parent variables plus extra, minus anything whose name looks like a secret.

    HOME and TMPDIR are not set here; run_sandboxed points them inside the run's cwd.
    """
    env = {name: value for name, value in os.environ.items() if _is_allowlisted(name)}
    env.update(extra or {})
    return _without_secrets(env)


def _is_allowlisted(name: str) -> bool:
    return name in _ALLOWED_NAMES or name.startswith(_ALLOWED_PREFIXES)


def _without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    return {name: str(value) for name, value in env.items() if not _SECRET_NAME.search(name)}


def run_sandboxed(
    argv: Sequence[str],
    *,
    cwd: Path,
    limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, so sharing the default is safe
    env: Mapping[str, str] | None = None,
    stdin_fd: int | None = None,
) -> SandboxResult:
    """Run argv in cwd under limits and return its outcome once it and everything it started are dead.

    stdin_fd (e.g. the judge's socket) becomes the run's standard input; by default it reads /dev/null.

    env defaults to scrubbed_env(); a given env is used as-is except that secret-looking names are dropped. HOME
    (cwd/home), TMPDIR (cwd/tmp) and PYTHONUNBUFFERED=1 are added unless env sets them. stdout/stderr go to files in cwd
    that are deleted after their tails are read.
    """
    cwd = Path(cwd).resolve()
    child_env = _child_env(cwd, env)
    with prepared_run(limits, cwd, child_env) as (limits, uid_note), capture_files() as (out, err):
        token = child_env[_MARKER_VAR]
        status_r, status_w = os.pipe()
        started = time.monotonic()
        try:
            proc = _start_reaper(argv, cwd, limits, child_env, (out, err), status_w, stdin_fd)
            os.close(status_w)
            status_w = -1
            try:
                timed_out = not _wait_for_exit(proc, limits.timeout_s)
            except BaseException:  # e.g. KeyboardInterrupt: still leave nothing running
                _stop_and_collect(proc, status_r, token, timed_out=True)
                raise
            status = _stop_and_collect(proc, status_r, token, timed_out)
            wall_s = time.monotonic() - started
            stdout = _read_tail(out, limits.output_limit_bytes)
            stderr = _read_tail(err, limits.output_limit_bytes)
        finally:
            for fd in (status_r, status_w):
                if fd >= 0:
                    os.close(fd)
    return _result_from(status, proc.returncode, stdout, stderr, wall_s, uid_note)


@contextlib.contextmanager
def prepared_run(limits: SandboxLimits, cwd: Path, child_env: dict[str, str]) -> Iterator[tuple[SandboxLimits, str]]:
    """limits completed for one confined run in cwd, and the note on its uid; child_env gets the run's own compile
    caches. Both sandbox paths (cold and warm) run inside this."""
    if not limits.confine_filesystem:
        yield limits, "not dropped: an unconfined run (the user's own code) keeps our uid"
        return
    own_caches(cwd, child_env)
    gpu = gpu_run(child_env) if limits.gpu is None else limits.gpu
    limits = with_filesystem_rules(replace(limits, gpu=gpu), cwd, child_env)
    unprivileged = not gpu if limits.unprivileged is None else limits.unprivileged
    if not unprivileged:
        why = "a GPU run keeps the judge's uid (legacy CUDA IPC fails between uids)" if gpu else "switched off"
        yield _hiding_root_only(limits), f"not dropped: {why} (SandboxLimits.unprivileged)"
        return
    with run_identity(cwd) as (uid, note):
        if uid is None:
            yield _hiding_root_only(limits), note
            return
        reveal = reveal_plan((*limits.readable_paths, *limits.writable_paths), cwd)
        yield replace(limits, run_as_uid=uid, reveal=reveal), note


def _hiding_root_only(limits: SandboxLimits) -> SandboxLimits:
    """limits for a confined run that keeps our uid: if that is root, what only root may read is masked for it."""
    if os.geteuid() != 0:
        return limits
    return replace(limits, hidden=filesystem.root_only_paths(filesystem.HIDDEN_ROOTS))


@contextlib.contextmanager
def capture_files() -> Iterator[tuple[int, int]]:
    """Descriptors of two unnamed files for a run's stdout and stderr, read back through these descriptors only.
    Nothing of them is in the candidate's folder: a candidate once replaced its capture file there by a FIFO (our
    open by path blocked forever) or a folder (we crashed)."""
    files = [tempfile.TemporaryFile(buffering=0) for _ in range(2)]  # O_TMPFILE where the filesystem has it
    try:
        yield files[0].fileno(), files[1].fileno()
    finally:
        for file in files:
            file.close()


def is_interpret_env(env: Mapping[str, str]) -> bool:
    """Whether an environment selects Triton's CPU interpreter (Triton reads TRITON_INTERPRET as a boolean)."""
    return env.get("TRITON_INTERPRET", "").strip().lower() in _TRUE_WORDS


def gpu_run(child_env: Mapping[str, str]) -> bool:
    """A run that may use the GPU: Triton's interpreter not selected, and a GPU assigned (CUDA_VISIBLE_DEVICES) or
    the NVIDIA driver present."""
    return not is_interpret_env(child_env) and ("CUDA_VISIBLE_DEVICES" in child_env or os.path.exists("/dev/nvidiactl"))


def own_caches(cwd: Path, child_env: dict[str, str]) -> None:
    """Compile caches inside the run's own folder: a candidate never writes where another candidate's compiled code
    is loaded from (Triton trusts whatever its cache folder holds). The cost: identical kernels compile once per
    run instead of once per machine (nothing on the CPU interpreter, which compiles nothing)."""
    for name, folder in (("TRITON_CACHE_DIR", ".triton-cache"), ("TORCHINDUCTOR_CACHE_DIR", ".inductor-cache")):
        if name == "TRITON_CACHE_DIR" or name in child_env:
            child_env[name] = str(cwd / folder)
            Path(child_env[name]).mkdir(exist_ok=True)


def with_filesystem_rules(limits: SandboxLimits, cwd: Path, child_env: Mapping[str, str]) -> SandboxLimits:
    """limits with this run's readable and writable paths, when it is to be confined."""
    if not limits.confine_filesystem:
        return limits
    readable, writable = confinement_rules(cwd, child_env, gpu=bool(limits.gpu))
    return replace(limits, readable_paths=readable, writable_paths=writable)


def _child_env(cwd: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    child_env = scrubbed_env() if env is None else _without_secrets(env)
    child_env.setdefault("HOME", str(cwd / "home"))
    child_env.setdefault("TMPDIR", str(cwd / "tmp"))
    # Output printed just before a timeout kill would otherwise die in a buffer.
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env[_MARKER_VAR] = os.urandom(8).hex()
    if gpu_run(child_env) and "TRITON_LIBCUDA_PATH" not in child_env and (libcuda := libcuda_folder()):
        child_env["TRITON_LIBCUDA_PATH"] = libcuda  # so Triton need not run ldconfig, which no run may execute
    for var in ("HOME", "TMPDIR"):
        Path(child_env[var]).mkdir(parents=True, exist_ok=True)
    return child_env


def _start_reaper(
    argv: Sequence[str],
    cwd: Path,
    limits: SandboxLimits,
    env: dict[str, str],
    capture: tuple[int, int],
    status_w: int,
    stdin_fd: int | None = None,
) -> subprocess.Popen:
    argv, limits = _startable(argv, limits)
    config = {
        "argv": argv,
        "limits": asdict(limits),
        "parent_pid": os.getpid(),
        "backstop_s": limits.timeout_s + _REAPER_BACKSTOP_S,
    }
    # -I -S: the reaper must not see the child's PYTHONPATH nor pay for site-packages; it is stdlib only.
    reaper_argv = [sys.executable, "-I", "-S", str(_REAPER), str(status_w), json.dumps(config)]
    return subprocess.Popen(
        reaper_argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL if stdin_fd is None else stdin_fd,
        stdout=capture[0],
        stderr=capture[1],
        pass_fds=(status_w,),
        start_new_session=True,
    )


def _startable(argv: Sequence[str], limits: SandboxLimits) -> tuple[list[str], SandboxLimits]:
    """argv and limits for a cold start: the program must be executable for the reaper's child to exec it (with its
    loader). `python -m MODULE` goes through exec_layer, which takes that right back before MODULE runs; any other
    program keeps it (it could exec itself again)."""
    argv = [os.fspath(arg) for arg in argv]
    if not limits.confine_filesystem or not argv:
        return argv, limits
    program = shutil.which(argv[0]) or argv[0]
    allowed = [rule[5:] for rule in limits.readable_paths if rule.startswith("exec:")]
    if len(argv) >= 3 and argv[1] == "-m":
        argv = [argv[0], str(_EXEC_LAYER), json.dumps(allowed), *argv[2:]]
    start = [f"exec:{path}" for path in (os.path.realpath(program), *program_loader())]
    return argv, replace(limits, readable_paths=(*limits.readable_paths, *start))


def _wait_for_exit(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait until proc has exited, without reaping it (so its pid and process group stay reserved)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return _poll_for_exit(proc.pid, timeout_s)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0.0, timeout_s) * 1000))
    finally:
        os.close(pidfd)


def _poll_for_exit(pid: int, timeout_s: float) -> bool:
    # Fallback for kernels without pidfd (< 5.3).
    deadline = time.monotonic() + timeout_s
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _stop_and_collect(proc: subprocess.Popen, status_r: int, token: str, timed_out: bool) -> dict | None:
    """Make sure the reaper and everything below it are gone, reap the reaper, and return its status (None: none)."""
    if timed_out:
        _signal_quietly(proc.pid, signal.SIGTERM)  # the reaper kills and reaps the whole tree, then reports
        _wait_for_exit(proc, _STOP_GRACE_S)
    status = _read_status(status_r)
    if status is None:
        # The reaper died (or hung) without reporting: kill its process group while the zombie still holds the
        # group id, then hunt down anything that left the group by its marker variable.
        _killpg_quietly(proc.pid)
        _signal_quietly(proc.pid, signal.SIGKILL)
        proc.wait()
        status = {"leftovers_killed": _kill_marked_processes(token), "stopped": timed_out}
    proc.wait()
    return status


def _read_status(status_r: int) -> dict | None:
    os.set_blocking(status_r, False)
    data = b""
    try:
        while chunk := os.read(status_r, 65536):
            data += chunk
    except BlockingIOError:
        pass  # the reaper is still alive and has not written anything
    try:
        return json.loads(data)
    except ValueError:
        return None


def _kill_marked_processes(token: str) -> int:
    """SIGKILL every live process carrying our marker and wait until each has exited; return how many there were."""
    return _kill_marked_processes_and_wait(token)


def _kill_marked_processes_and_wait(token: str, server_pid: int | None = None) -> int:
    """runner._kill_marked_processes, but return only once every killed process has really ended.

    A dying process's environ reads empty as soon as its memory is detached, while it may still be tearing down a
    large (torch-sized) address space; a pidfd turns readable only once it has exited. The server (a subreaper)
    kills a dead supervisor's orphans too, possibly before our sweep sees their marker: those are found as
    processes below it that are mid-exit (its children, or a dying candidate's own children not yet handed to it),
    and waited for as well.
    """
    needle = f"{_MARKER_VAR}={token}".encode()
    pidfds: dict[int, int] = {}
    deadline = time.monotonic() + _STOP_GRACE_S
    try:
        while time.monotonic() < deadline:
            found = [pid for pid in _all_pids() if needle in _environ_of(pid)]
            if not found:
                break
            for pid in found:
                _kill_pinned(pid, pidfds)
            time.sleep(0.002)
        for pid in _exiting_descendants_of(server_pid):
            _kill_pinned(pid, pidfds)
        for pidfd in pidfds.values():
            if pidfd >= 0:
                select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
    finally:
        for pidfd in pidfds.values():
            if pidfd >= 0:
                os.close(pidfd)
    return len(pidfds)


def _exiting_descendants_of(root: int | None) -> list[int]:
    """Processes below `root` that are exiting: environ already gone, not yet a zombie. Live processes keep theirs.

    Descendants, not only children: an orphan whose dying parent has not yet handed it to the subreaper is still
    below that parent. (The likely cause of 2 failures in ~34 runs of tests/test_warm.py, where a process was still
    alive after the run returned; 0 in 14 runs after the change.)"""
    if root is None:
        return []
    parents, exiting = {}, []
    for pid in _all_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[pid] = int(fields[1])
        if fields[0] != "Z" and not any(_environ_of(pid)):
            exiting.append(pid)
    return [pid for pid in exiting if _is_below(pid, root, parents)]


def _is_below(pid: int, root: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid in parents and pid not in seen:  # a pid reused mid-scan could make a loop
        seen.add(pid)
        pid = parents[pid]
        if pid == root:
            return True
    return False


def _kill_pinned(pid: int, pidfds: dict[int, int]) -> None:
    """SIGKILL pid through a pidfd kept open (so we can wait for its exit); plain kill where pidfds are missing."""
    if pid not in pidfds:
        try:
            pidfds[pid] = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        except (AttributeError, OSError):
            pidfds[pid] = -1
    try:
        if pidfds[pid] >= 0:
            signal.pidfd_send_signal(pidfds[pid], signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _environ_of(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _signal_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _killpg_quietly(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_tail(source: int | Path, limit: int) -> str:
    """Last `limit` bytes of a descriptor (read with pread: its offset is the writer's) or of a path (opened without
    following links or blocking, read only if a regular file), prefixed with a note when the head was dropped."""
    if isinstance(source, int):
        return _tail_of(source, limit)
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # gone, a link, a folder, ...
        return ""
    try:
        return _tail_of(fd, limit)
    finally:
        os.close(fd)


def _tail_of(fd: int, limit: int) -> str:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return ""
    skipped = max(0, st.st_size - limit)
    data = os.pread(fd, limit, skipped)
    text = data.decode("utf-8", errors="replace")
    return f"[... {skipped} bytes truncated ...]\n{text}" if skipped else text


def _result_from(
    status: dict | None, reaper_returncode: int | None, stdout: str, stderr: str, wall_s: float, uid_note: str = ""
) -> SandboxResult:
    status = status or {}
    timed_out = bool(status.get("stopped"))
    memory_exceeded = bool(status.get("memory_exceeded"))
    tasks_exceeded = bool(status.get("tasks_exceeded"))
    disk_exceeded = bool(status.get("disk_exceeded"))
    wait_status = status.get("wait_status")
    if timed_out:
        returncode, signal_name = None, "SIGKILL"
    elif memory_exceeded or tasks_exceeded or disk_exceeded:  # a watchdog SIGKILLed the tree (status reaped then)
        returncode, signal_name = -signal.SIGKILL, "SIGKILL"
    elif wait_status is not None:
        returncode = os.waitstatus_to_exitcode(wait_status)
        signal_name = _signal_name(-returncode) if returncode < 0 else None
    else:  # no report from the reaper: the best we know is how the reaper itself ended
        returncode = reaper_returncode
        signal_name = _signal_name(-returncode) if returncode is not None and returncode < 0 else None
        stderr += "\n[sandbox: the reaper exited without a status report]"
    if status.get("cleanup_complete") is False:
        stderr += "\n[sandbox: some leftover processes could not be killed within the cleanup deadline]"
    if disk_exceeded:
        stderr += f"\n[sandbox: the run's folder grew past {int(status.get('folder_limit_bytes') or 0) / 1024**2:.0f} MiB; killed]"
    if memory_exceeded:
        stderr += "\n" + memory_note(int(status.get("rss_limit_bytes") or 0), int(status.get("rss_peak_bytes") or 0))
    if tasks_exceeded:
        stderr += (f"\n[sandbox: the process tree ran more than {status.get('tasks_limit')} processes and threads "
                   f"({status.get('tasks_peak')} when sampled); killed]")
    return SandboxResult(
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        timed_out=timed_out,
        wall_s=wall_s,
        signal_name=signal_name,
        leftovers_killed=int(status.get("leftovers_killed", 0)),
        network_isolated=bool(status.get("network_isolated", False)),
        memory_exceeded=memory_exceeded,
        tasks_exceeded=tasks_exceeded,
        rss_peak_bytes=status.get("rss_peak_bytes"),
        filesystem_confined=bool(status.get("filesystem_confined", False)),
        disk_exceeded=disk_exceeded,
        confinement={**status.get("confinement", {}), "uid_note": uid_note, **_folder_facts(status)},
    )


def _folder_facts(status: dict) -> dict:
    return {key: status[key] for key in ("folder_peak_bytes", "folder_limit_bytes") if key in status}


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"SIG{signum}"
