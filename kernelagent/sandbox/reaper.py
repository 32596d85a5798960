"""Child-side half of the sandbox: resource limits, network isolation, and the subreaper that runs the untrusted command.

Run as ``python -I -S reaper.py STATUS_FD CONFIG_JSON``; stdlib only and no heavy imports, because it starts on every call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import resource
import signal
import socket
import stat
import struct
import sys
import time
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernelagent.sandbox.runner import SandboxLimits

_CLONE_NEWNS = 0x00020000
_MS_NOSUID, _MS_NODEV, _MS_BIND, _MS_REC, _MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_KEYCTL_SYSCALL = {"x86_64": 250, "aarch64": 219}.get(os.uname().machine, 219)  # 219: the generic table's
_KEYCTL_JOIN_SESSION_KEYRING, _KEYCTL_UNLINK, _KEYCTL_CLEAR, _KEYCTL_GET_PERSISTENT = 1, 9, 7, 22
_KEY_SPEC_PROCESS_KEYRING, _KEY_SPEC_USER_KEYRING, _KEY_SPEC_USER_SESSION_KEYRING = -2, -4, -5
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_SET_CHILD_SUBREAPER = 36
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

# Hard limit = soft + grace, so a CPU hog first gets SIGXCPU (catchable, leaves a traceback) and then SIGKILL.
_CPU_HARD_GRACE_S = 5
# Cleanup must finish well inside the parent's grace period (runner._STOP_GRACE_S) so the status still arrives.
_CLEANUP_DEADLINE_S = 5.0
_WAKE_SIGNALS = {signal.SIGCHLD, signal.SIGTERM}
# Host-memory watchdog: how often the tree's resident memory is summed, and the most CPU a check may cost when it has
# to scan all of /proc (kernels without CONFIG_PROC_CHILDREN): a slow scan stretches the interval instead.
_RSS_POLL_S = 0.05
_FOLDER_POLL_S = 0.25
_RSS_MAX_CPU_SHARE = 0.05


# --------------------------------------------------------------------------- limits (also used by a fork server)


def apply_limits_in_child(limits: SandboxLimits) -> dict:
    """Isolate the network, confine the filesystem, signals and abstract sockets (Landlock), set rlimits and, where a
    uid was chosen for the run, become that uid, in the current, already-forked process; return what took effect
    (the confinement record: see isolation_report).

    Call it between fork and exec, or right after fork in a warm fork server. Limits only ever tighten: a request above
    the current hard limit is clamped to it. What the OS refuses is skipped and recorded, never assumed.
    """
    if limits.isolate_network:
        _isolate_network()
    ipc_isolated = getattr(limits, "isolate_ipc", True) and _isolate_ipc()
    uid = getattr(limits, "run_as_uid", None)
    if uid is not None and getattr(limits, "reveal", None):
        _reveal(limits.reveal)  # while still root, before the rules' paths are opened
    hidden = _hide(limits.hidden) if uid is None and getattr(limits, "hidden", None) else None
    facts: dict = {
        "filesystem_confined": False,
        "landlock_abi": landlock_abi(),
        "scopes": [],
        "ipc_isolated": ipc_isolated,
        **({"root_only_hidden": hidden} if hidden is not None else {}),
    }
    if limits.confine_filesystem:
        confined, scopes = confine_filesystem(limits.readable_paths, limits.writable_paths)
        facts.update(filesystem_confined=confined, scopes=scopes)
    _set_rlimit(resource.RLIMIT_CORE, 0, 0)
    cpu_s = cpu_seconds_for(limits)
    _set_rlimit(resource.RLIMIT_CPU, cpu_s, cpu_s + _CPU_HARD_GRACE_S)
    _set_rlimit(resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes)
    _set_rlimit(resource.RLIMIT_NOFILE, limits.open_files, limits.open_files)
    # CUDA reserves tens of GiB of *virtual* address space at init, so RLIMIT_AS would break every GPU run;
    # callers turn it off there (apply_memory_limit=False) and only CPU runs get an address-space cap.
    if limits.apply_memory_limit and limits.memory_bytes is not None:
        _set_rlimit(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)
    if uid is None and os.geteuid() == 0 and getattr(limits, "confine_filesystem", False):
        # A confined run that stays root (GPU runs, which share the judge's uid) gives up every capability:
        # CAP_MKNOD, CAP_SYS_ADMIN (mount), CAP_KILL, CAP_SYS_PTRACE, CAP_DAC_OVERRIDE ... for itself and its children.
        _drop_capabilities()
    if uid is not None:
        # Processes and threads of this uid: the run owns the uid alone (identity.run_identity), so this counts only it.
        # Root ignores RLIMIT_NPROC, hence set here and enforced once the uid is dropped below.
        tasks = tasks_limit_for(limits)
        _set_rlimit(resource.RLIMIT_NPROC, tasks, tasks)
        _become(uid)
        facts["max_tasks"] = tasks
    # A session keyring of the run's own: the inherited one is the agent's, which the run would possess (and could
    # write keys into) after any uid change. It ends with the run's last process.
    facts["own_session_keyring"] = _keyctl(_KEYCTL_JOIN_SESSION_KEYRING, 0) >= 0
    if limits.confine_filesystem:
        gpu, memfds = bool(limits.gpu), bool(getattr(limits, "lends_memory", False))
        facts["seccomp"] = _install_seccomp(gpu=gpu, memfds=memfds)
        facts["refused_calls"] = [*REFUSED_CALLS, *([] if gpu else ["socket(AF_UNIX)", *_cpu_only_refused(memfds)])]
    facts["uid"] = os.getuid()
    facts["capabilities"] = _effective_capabilities()
    return facts


# A seccomp filter for confined runs, for what Landlock cannot name:
# - the kernel's keyrings are per uid, and a run that keeps the agent's uid (GPU runs) linked the uid's own keyrings
#   into its session and read what was kept there, or left keys for a later run (an outside attacker did both, on the
#   GPU rules): add_key, request_key and keyctl are refused (EPERM) once the run's own session keyring is joined;
# - a Unix socket with a path (in /tmp, /run ...) reaches processes outside the run's network namespace, and
#   Landlock has no right for connecting to one (the same attacker talked to an outside listener): on CPU runs
#   socket(AF_UNIX, ...) is refused, so nothing can connect (socketpair, whose two ends stay inside, is not). GPU
#   runs keep it until a GPU probe shows the driver needs no Unix socket of its own.
# - a run that keeps the agent's uid (GPU runs, root without capabilities) owns every root-owned file it can name, and
#   Landlock has no right for metadata: an outside attacker (round 3, GPU rules) made a bait program setuid-root and
#   gave a folder mode 0777 and an extended attribute. chown and the xattr writes are refused, and chmod with a
#   setuid/setgid bit; a plain chmod or utime of a root-owned file stays possible where the run keeps our uid (only a
#   uid of its own closes that, docs/sandbox.md);
# - prlimit64 on another process of the same uid set the agent's open-file limit to 4 and its CPU limit to 1 s (it was
#   killed, and dumped a core holding the API key): refused unless the pid is 0 (the caller, as glibc passes it);
# - io_uring opens sockets and connects without the socket/connect calls (the same attacker reached a host listener
#   through IORING_OP_SOCKET on the CPU rules): io_uring_setup, _enter and _register are refused.
# Syscall numbers per architecture; on x86-64 the x32 calls are refused too.
_AUDIT_ARCH_X86_64, _AUDIT_ARCH_AARCH64 = 0xC000003E, 0xC00000B7
_SYSCALLS = {
    _AUDIT_ARCH_X86_64: {
        "add_key": 248, "request_key": 249, "keyctl": 250, "socket": 41, "prlimit64": 302,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260,
        "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190, "removexattr": 197, "lremovexattr": 198,
        "fremovexattr": 199, "setxattrat": 463, "removexattrat": 466,
        "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "memfd_create": 319, "shmget": 29,
    },
    _AUDIT_ARCH_AARCH64: {
        "add_key": 217, "request_key": 218, "keyctl": 219, "socket": 198, "prlimit64": 261,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "fchown": 55, "fchownat": 54,
        "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14, "lremovexattr": 15, "fremovexattr": 16,
        "setxattrat": 463, "removexattrat": 466,
        "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "memfd_create": 279, "shmget": 194,
    },
}
_REFUSED = ("add_key", "request_key", "keyctl", "io_uring_setup", "io_uring_enter", "io_uring_register",
            "chown", "fchown", "lchown", "fchownat", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
            "lremovexattr", "fremovexattr", "setxattrat", "removexattrat")
_SETID_BITS = 0o6000
# (call, offset of the argument in seccomp_data, jump op, constant, refuse when the jump is taken)
_ARGUMENT_RULES = (
    ("prlimit64", 16, "JEQ", 0, False),  # args[0] == 0: the caller itself
    ("chmod", 24, "JSET", _SETID_BITS, True),  # args[1]: mode
    ("fchmod", 24, "JSET", _SETID_BITS, True),
    ("fchmodat", 32, "JSET", _SETID_BITS, True),  # args[2]: mode
    ("fchmodat2", 32, "JSET", _SETID_BITS, True),
)
REFUSED_CALLS = [*_REFUSED, "prlimit64 on another process", "chmod with setuid/setgid bits"]
# CPU runs only, until a GPU probe shows CUDA does without them: memory held in a memfd or a SysV segment that is not
# mapped is not resident, so the host-memory watchdog (resident memory of the process tree) did not see it (the
# round 3 attacker wrote 9.5 GiB into memfds and passed); the candidate's tensors are the judge's memfds, lent to it.
# (Test mode's test process lends tensors itself and keeps memfd_create: SandboxLimits.lends_memory.)
_CPU_ONLY_REFUSED = ("memfd_create", "shmget")


def _cpu_only_refused(memfds: bool) -> list[str]:
    """The calls refused on CPU runs only (socket(AF_UNIX) aside): memfd_create stays for a run that lends memory."""
    return [name for name in _CPU_ONLY_REFUSED if not (memfds and name == "memfd_create")]
_X32_BIT = 0x40000000
_AF_UNIX = 1
_SECCOMP_RET_ALLOW, _SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
_BPF_LD_W_ABS, _BPF_JEQ, _BPF_JGE, _BPF_JSET, _BPF_RET = 0x20, 0x15, 0x35, 0x45, 0x06
_SECCOMP_DATA_NR, _SECCOMP_DATA_ARCH, _SECCOMP_DATA_ARG0 = 0, 4, 16  # low half of args[0] (little-endian)
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def seccomp_program(*, gpu: bool, memfds: bool = False) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions: per known architecture, refuse the calls named above (the
    argument rules by their argument; on CPU runs, the CPU-only ones too); allow everything else, on other
    architectures too (nothing known to refuse)."""
    code: list[tuple] = [(_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARCH)]
    for arch, numbers in _SYSCALLS.items():
        code.append((_BPF_JEQ, 0, f"not {arch}", arch))
        code.append((_BPF_LD_W_ABS, 0, 0, _SECCOMP_DATA_NR))
        if arch == _AUDIT_ARCH_X86_64:
            code.append((_BPF_JGE, "deny", 0, _X32_BIT))
        code += [(_BPF_JEQ, "deny", 0, numbers[name]) for name in _REFUSED if name in numbers]
        # Each rule below ends the filter for its call (the argument replaces the number in the accumulator).
        rules = [(name, offset, op, k, refuse) for name, offset, op, k, refuse in _ARGUMENT_RULES if name in numbers]
        if not gpu:
            code += [(_BPF_JEQ, "deny", 0, numbers[name]) for name in _cpu_only_refused(memfds)]
            rules.append(("socket", _SECCOMP_DATA_ARG0, "JEQ", _AF_UNIX, True))
        for i, (name, offset, op, k, refuse) in enumerate(rules):
            after = f"{arch} rule {i}"
            code.append((_BPF_JEQ, 0, after, numbers[name]))
            code.append((_BPF_LD_W_ABS, 0, 0, offset))
            jump = _BPF_JSET if op == "JSET" else _BPF_JEQ
            code.append((jump, "deny", "allow", k) if refuse else (jump, "allow", "deny", k))
            code.append(after)
        code.append((_BPF_RET, 0, 0, _SECCOMP_RET_ALLOW))
        code.append(f"not {arch}")
    code += ["allow", (_BPF_RET, 0, 0, _SECCOMP_RET_ALLOW), "deny", (_BPF_RET, 0, 0, _SECCOMP_RET_ERRNO | errno.EPERM)]
    return _resolve_jumps(code)


def _resolve_jumps(code: list) -> list[tuple[int, int, int, int]]:
    """Instructions with jump offsets in place of labels (a str in the list marks the next instruction; a jump
    offset counts instructions after the jump's own; BPF jumps only forward)."""
    at, count = {}, 0
    for item in code:
        if isinstance(item, str):
            at[item] = count
        else:
            count += 1
    program, index = [], 0
    for item in code:
        if isinstance(item, str):
            continue
        op, jt, jf, k = item
        offsets = [at[j] - index - 1 if isinstance(j, str) else j for j in (jt, jf)]
        program.append((op, *offsets, k))
        index += 1
    return program


def _install_seccomp(*, gpu: bool, memfds: bool = False) -> bool:
    """Install the filter for this process and all it starts; False where the kernel refuses it."""
    program = seccomp_program(gpu=gpu, memfds=memfds)
    filters = (ctypes.c_ubyte * (8 * len(program)))()
    for i, (op, jt, jf, k) in enumerate(program):
        struct.pack_into("=HBBI", filters, 8 * i, op, jt, jf, k)  # struct sock_filter
    fprog = struct.pack("@HP", len(program), ctypes.addressof(filters))  # struct sock_fprog, native alignment
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    return libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0) == 0


def _isolate_ipc() -> bool:
    """A SysV IPC namespace of the run's own (shared memory, semaphores, message queues): what a run creates there is
    freed when its last process ends and is invisible to every other run. Needs root (or CAP_SYS_ADMIN)."""
    try:
        _unshare(_CLONE_NEWIPC)
    except OSError:
        return False
    return True


def _keyctl(*args: int) -> int:
    return _libc().syscall(_KEYCTL_SYSCALL, *(ctypes.c_long(arg) for arg in args))


def clear_keyrings_of(uid: int) -> None:
    """Empty the kernel keyrings that belong to uid and outlive its processes (its user, user-session and persistent
    keyrings): keys a run added there would otherwise be readable by a later run given the same uid. Call as that
    uid (real and effective). Naming those keyrings creates them, so nothing is done while the uid owns at most one
    key (the run's own session keyring, gone with its processes): only a run that made keyrings of its own pays."""
    if _keys_owned_by(uid) < 2:
        return
    for keyring in (_KEY_SPEC_USER_KEYRING, _KEY_SPEC_USER_SESSION_KEYRING):
        _keyctl(_KEYCTL_CLEAR, keyring)
    persistent = _keyctl(_KEYCTL_GET_PERSISTENT, -1, _KEY_SPEC_PROCESS_KEYRING)  # linked into our process keyring
    if persistent >= 0:
        _keyctl(_KEYCTL_CLEAR, persistent)
        _keyctl(_KEYCTL_UNLINK, persistent, _KEY_SPEC_PROCESS_KEYRING)


def _keys_owned_by(uid: int) -> int:
    """The uid's key count in /proc/key-users ("UID: USAGE NKEYS/NIKEYS ..."); 0 when it has none or we cannot read."""
    try:
        with open("/proc/key-users", "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                if name.strip() == str(uid).encode():
                    return int(rest.split()[1].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _reveal(plan: list) -> None:
    """Mask each closed folder with an empty tmpfs, in a mount namespace of this run's own, and bind back only the
    paths the run needs below it (identity.reveal_plan). Raises when the OS refuses: the run must not go on with
    paths it cannot reach and report a uid drop that silently broke it."""
    _unshare(_CLONE_NEWNS)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing we mount here reaches the host
    os.umask(0o022)  # the folders made below must let the run's uid through
    for blocker, needed in plan:
        fds = [(path, os.open(path, _O_PATH | os.O_CLOEXEC)) for path in needed]
        try:
            _mount("tmpfs", blocker, "tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=755,size=1m")
            done: list[str] = []
            for path, fd in fds:
                if any(path == d or path.startswith(d.rstrip("/") + "/") for d in done):
                    continue  # already inside a bound folder
                is_dir = os.path.isdir(f"/proc/self/fd/{fd}")
                _make_mountpoint(path, is_dir)
                _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC)
                done.append(path)
        finally:
            for _, fd in fds:
                os.close(fd)


def _hide(paths: tuple[str, ...]) -> int | str:
    """Mask each path (a file other users may not read, or a folder they may not list) in a mount namespace of this
    run's own: an empty file (/dev/null) or an empty folder in its place. For a run that keeps root, which owns them
    (filesystem.root_only_paths). Returns how many were masked, or why none could be (recorded, never assumed)."""
    try:
        _unshare(_CLONE_NEWNS)
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing we mount here reaches the host
    except OSError as err:
        return f"not masked: {err}"
    masked = 0
    for path in paths:
        try:
            if os.path.isdir(path):
                _mount("tmpfs", path, "tmpfs", _MS_NOSUID | _MS_NODEV, b"mode=000,size=4k")
            else:
                _mount("/dev/null", path, None, _MS_BIND)
            masked += 1
        except OSError:
            continue  # gone since it was listed, or not a mount point we may use: counted as not masked
    return masked


def _make_mountpoint(path: str, is_dir: bool) -> None:
    parent = path if is_dir else os.path.dirname(path)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    if not is_dir:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: bytes | None = None) -> None:
    source_b, target_b, fstype_b = (None if text is None else text.encode() for text in (source, target, fstype))
    if _libc().mount(source_b, target_b, fstype_b, flags, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def tasks_watched(limits: SandboxLimits, facts: dict) -> int | None:
    """The task count to watch from outside: a confined run that kept a uid RLIMIT_NPROC does not bound (no
    max_tasks in its facts: root, as on the GPU). Unconfined runs are the user's own code (torch.compile's workers)."""
    confined = getattr(limits, "confine_filesystem", False)
    return tasks_limit_for(limits) if confined and facts.get("max_tasks") is None else None


def tasks_limit_for(limits: SandboxLimits) -> int:
    """RLIMIT_NPROC: explicit, or enough for torch's and OpenMP's per-core threads plus compiler subprocesses."""
    explicit = getattr(limits, "max_tasks", None)
    return int(explicit) if explicit else max(256, 4 * _usable_cpus())


def _become(uid: int) -> None:
    """Drop to uid (and gid = uid) for good: no groups, real, effective and saved ids all changed, so every
    capability (CAP_MKNOD, CAP_KILL, CAP_SYS_PTRACE, CAP_DAC_OVERRIDE ...) is gone with them."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid):
        raise PermissionError(f"could not become uid {uid}")
    # A uid change makes a process undumpable, which hands its own /proc entries to root: a forked (warm) candidate
    # could not read its /proc/self/environ or maps. exec resets it the same way on the cold path. Nothing else
    # runs as this uid, so nothing else gains ptrace or /proc access by it.
    _libc().prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)


def _drop_capabilities() -> None:
    libc = _libc()
    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails (harmlessly) past the kernel's last capability
    header = struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two {effective, permitted, inheritable} u32 triples, all empty
    if libc.capset(ctypes.c_char_p(header), ctypes.c_char_p(data)) != 0:
        raise PermissionError(f"capset: {os.strerror(ctypes.get_errno())}")


def _effective_capabilities() -> str:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return line.split()[1].decode()
    except OSError:
        pass
    return "unknown"


def isolation_report(own_netns: str, facts: dict) -> bytes:
    """What the child writes to its parent once its limits are in place: the confinement record as JSON, with
    whether it left our network namespace."""
    return json.dumps({"network_isolated": _netns_id() != own_netns, **facts}).encode()


def read_isolation_report(report: bytes) -> dict:
    """The child's confinement record; every flag False when the child died before it could report."""
    try:
        facts = json.loads(report)
    except ValueError:
        facts = {}
    facts.setdefault("network_isolated", False)
    facts.setdefault("filesystem_confined", False)
    return facts


def kill_uid(uid: int | None) -> None:
    """SIGKILL every process running as uid (the run's own uid: nothing else has it), wherever it went; then remove
    the files that uid left in the shared-memory folders. Call as root once the run's tree was killed: this is the
    backstop for anything that left the tree (which a subreaper should make impossible)."""
    if uid is None or os.geteuid() != 0:
        return
    saved = os.getresuid()
    # Real and effective uid = the run's, saved uid kept at 0: kill(-1) then reaches exactly that uid's processes
    # (never root's, nor ourselves), and setresuid can come back. Its return value says nothing here (seen: success
    # with no such process), so a few passes are made rather than "until none is left".
    os.setresuid(uid, uid, 0)
    try:
        for _ in range(3):
            with contextlib.suppress(OSError):
                os.kill(-1, signal.SIGKILL)
            time.sleep(0.0005)
        clear_keyrings_of(uid)
    finally:
        os.setresuid(*saved)
    remove_files_of(uid, ("/dev/shm", "/dev/mqueue"))


def remove_files_of(uid: int, folders: tuple[str, ...]) -> None:
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    if entry.is_dir(follow_symlinks=False):
                        _remove_tree(entry.path)
                    else:
                        os.unlink(entry.path)
            except OSError:
                pass


def _remove_tree(path: str) -> None:
    import shutil  # noqa: PLC0415 - rare path; the reaper keeps its start-up imports small

    shutil.rmtree(path, ignore_errors=True)


class PolledLimit:
    """A byte limit measured from outside at intervals, the measuring itself capped at _RSS_MAX_CPU_SHARE of a core;
    the caller kills the run once over() says so. Subclasses say what they measure (_measure)."""

    interval_s = _RSS_POLL_S

    def __init__(self, limit_bytes: int | None, first_check_in_s: float = 0.0) -> None:
        self.limit_bytes = limit_bytes
        self.peak_bytes = 0
        self._next_check = time.monotonic() + first_check_in_s

    def wait_s(self, remaining_s: float) -> float:
        """How long a caller may block before the next check is due (remaining_s when nothing is watched)."""
        if self.limit_bytes is None:
            return max(0.0, remaining_s)
        return max(0.0, min(remaining_s, self._next_check - time.monotonic()))

    def over(self) -> bool:
        """Check now if a check is due; True when the run holds more than the limit."""
        if self.limit_bytes is None or time.monotonic() < self._next_check:
            return False
        started = time.monotonic()
        used, over = self._measure()
        self._next_check = time.monotonic() + max(self.interval_s, (time.monotonic() - started) / _RSS_MAX_CPU_SHARE)
        self.peak_bytes = max(self.peak_bytes, used)
        return over

    def _measure(self) -> tuple[int, bool]:
        raise NotImplementedError


class FolderWatch(PolledLimit):
    """A total size (and file count) for the run's disk use, which RLIMIT_FSIZE (per file) cannot give: its folder,
    the files its processes hold open after unlinking them (a candidate held 1.2 GiB that way while its folder
    summed 20 KiB) and the capture files of its stdout and stderr (`held`: descriptors of the watcher's). Polled, and
    the run is killed once over. A poll, not a quota: a fast writer may overshoot by what it writes in one interval
    (RLIMIT_FSIZE bounds each file meanwhile)."""

    interval_s = _FOLDER_POLL_S

    def __init__(
        self,
        folder: str,
        limit_bytes: int | None,
        max_files: int = 20000,
        *,
        tree_root: int | None = None,
        held: tuple[int, ...] = (),
    ) -> None:
        super().__init__(limit_bytes, _FOLDER_POLL_S)
        self.folder, self.max_files = folder, max_files
        self.tree_root, self.held = tree_root, held

    def _measure(self) -> tuple[int, bool]:
        used, files = folder_usage(self.folder, self.max_files + 1)
        used += unlinked_bytes(self.tree_root, self.held)
        return used, used > self.limit_bytes or files > self.max_files

    def report(self) -> dict:
        return {"folder_peak_bytes": self.peak_bytes, "folder_limit_bytes": self.limit_bytes}


def unlinked_bytes(tree_root: int | None, held: tuple[int, ...] = ()) -> int:
    """Bytes allocated to regular files with no name left (unlinked, or made with O_TMPFILE) that the processes
    below tree_root hold open, plus the files of the descriptors in held; each file counted once. memfds are left
    to the memory watch (the judge lends tensors as memfds)."""
    seen: dict[tuple[int, int], int] = {}
    for fd in held:
        with contextlib.suppress(OSError):
            st = os.fstat(fd)
            seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    for pid in _descendants(tree_root) if tree_root is not None else ():
        folder = f"/proc/{pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = f"{folder}/{name}"
            try:
                target = os.readlink(path)
                if not target.endswith(" (deleted)") or target.startswith("/memfd:"):
                    continue
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 0:
                seen[(st.st_dev, st.st_ino)] = st.st_blocks * 512
    return sum(seen.values())


def folder_usage(folder: str, max_entries: int) -> tuple[int, int]:
    """(bytes allocated, entries) below folder, without following links; stops counting at max_entries."""
    total, count, stack = 0, 0, [folder]
    while stack and count < max_entries:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            count += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return total, count


# --------------------------------------------------------------------------- filesystem confinement (Landlock)

# Landlock (Linux 5.13+) lets an unprivileged process give up filesystem access for itself and all it starts. The
# syscall numbers are those of the generic table, the same on x86-64 and arm64.
_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_CHANGE_TREE = sum(1 << bit for bit in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14  # ABI 2 and 3; ioctl on devices (ABI 5) is left unhandled: CUDA needs it
_FS_FILE_ONLY = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE  # what a rule on a plain file may grant
_FS_READ = _FS_READ_FILE | _FS_READ_DIR  # not EXECUTE: only what "exec:" rules name may be executed
_FS_WRITE = _FS_READ | _FS_WRITE_FILE | _FS_CHANGE_TREE | _FS_REFER | _FS_TRUNCATE
_FS_HANDLED = _FS_WRITE | _FS_EXECUTE
_O_PATH = 0o10000000
# ABI 6 (Linux 6.12): a scoped domain may not signal, nor connect to abstract Unix sockets of, processes outside it.
_SCOPES = {"abstract_unix_socket": 1 << 0, "signal": 1 << 1}


def confine_filesystem(readable: list[str], writable: list[str]) -> tuple[bool, list[str]]:
    """Allow reads (and execution) below readable, reads and writes below writable, nothing else; where the kernel
    has Landlock ABI 6, also refuse signals to, and abstract Unix sockets of, every process outside this run (the
    agent, the judge, the fork server and its supervisors, other candidates). A path given as "dir:PATH" allows only
    listing that directory, "rw-files:PATH" reading and writing files that exist below it (no creating, removing or
    device nodes). Returns (confined, scopes applied); (False, []), with
    nothing changed, where the kernel has no Landlock."""
    abi = landlock_abi()
    if abi < 1:
        return False, []
    libc = _libc()
    handled = _FS_HANDLED & ~(0 if abi >= 3 else _FS_TRUNCATE) & ~(0 if abi >= 2 else _FS_REFER)
    scopes = dict(_SCOPES) if abi >= 6 else {}
    if abi >= 6:
        attr = struct.pack("=QQQ", handled, 0, sum(scopes.values()))
    else:
        attr = struct.pack("=Q", handled)
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), len(attr), 0)
    if ruleset < 0:
        return False, []
    try:
        for path, access in [*(_read_rule(p) for p in readable), *((p, _FS_WRITE) for p in writable)]:
            _allow(libc, ruleset, path, access & handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return False, []
        if libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return False, []
        return True, sorted(scopes)
    finally:
        os.close(ruleset)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 or less where it has none (or it is disabled)."""
    return _libc().syscall(_LANDLOCK_CREATE_RULESET, None, 0, _LANDLOCK_CREATE_RULESET_VERSION)


def restrict_execution(executable: list[str]) -> bool:
    """A further Landlock layer that allows executing only what `executable` names (layers only ever narrow): how a
    run started by exec'ing the interpreter (the cold path) takes that right back before its own code runs."""
    if landlock_abi() < 1:
        return False
    libc = _libc()
    # REFER handled and granted everywhere: a layer that does not handle it refuses every move of a file between
    # folders (EXDEV), which Triton's cache makes for each kernel it builds (seen on the H200, cold confined runs).
    refer = _FS_REFER if landlock_abi() >= 2 else 0
    attr = struct.pack("=Q", _FS_EXECUTE | refer)
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), len(attr), 0)
    if ruleset < 0:
        return False
    try:
        if refer:
            _allow(libc, ruleset, "/", refer)
        for path in executable:
            _allow(libc, ruleset, path, _FS_EXECUTE)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        return libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0) == 0
    finally:
        os.close(ruleset)


def _read_rule(path: str) -> tuple[str, int]:
    if path.startswith("exec:"):
        return path[5:], _FS_READ | _FS_EXECUTE
    if path.startswith("dir:"):
        return path[4:], _FS_READ_DIR
    if path.startswith("rw-files:"):
        return path[9:], _FS_READ | _FS_WRITE_FILE | _FS_TRUNCATE
    return path, _FS_READ


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have
    try:
        if not os.path.isdir(path):
            access &= _FS_FILE_ONLY
        rule = struct.pack("=Qi", access, fd)  # struct landlock_path_beneath_attr is packed
        libc.syscall(_LANDLOCK_ADD_RULE, ruleset, _LANDLOCK_RULE_PATH_BENEATH, ctypes.c_char_p(rule), 0)
    finally:
        if path.startswith("/proc/self/"):
            _PINNED.append(fd)
        else:
            os.close(fd)


# A rule binds to an inode, and procfs gives a folder looked up afresh a new one: a run's own /proc/self/... folder
# stays pinned (its descriptor open for the run's life) so that the rule on it keeps matching.
_PINNED: list[int] = []


def cpu_seconds_for(limits: SandboxLimits) -> int:
    """RLIMIT_CPU in seconds: explicit, or derived from the wall timeout.

    RLIMIT_CPU counts the CPU time of all threads, and torch / the Triton interpreter run one thread per core, so the
    derived budget scales with the cores we may use; it is only a backstop for when the wall-clock kill never comes.
    """
    if limits.cpu_time_s is not None:
        return int(limits.cpu_time_s)
    return int(limits.timeout_s * max(2, _usable_cpus())) + 10


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _set_rlimit(which: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        hard = min(hard, current_hard)
    resource.setrlimit(which, (min(soft, hard), hard))


def _isolate_network() -> bool:
    """Move this process into a fresh network namespace (only loopback); False when the OS does not allow it."""
    try:
        _unshare(_CLONE_NEWNET)  # root, or CAP_SYS_ADMIN
    except PermissionError:
        uid, gid = os.getuid(), os.getgid()
        try:
            _unshare(_CLONE_NEWUSER | _CLONE_NEWNET)  # unprivileged user namespaces
        except OSError:
            return False
        _map_ids_to_themselves(uid, gid)
    except OSError:
        return False
    _bring_up_loopback()
    return True


def _unshare(flags: int) -> None:
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(flags)
        return
    if _libc().unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _map_ids_to_themselves(uid: int, gid: int) -> None:
    # Without a mapping we would run as "nobody" and could not read our own files; keep the real ids instead.
    try:
        for path, text in (
            ("/proc/self/setgroups", "deny"),
            ("/proc/self/uid_map", f"{uid} {uid} 1\n"),
            ("/proc/self/gid_map", f"{gid} {gid} 1\n"),
        ):
            with open(path, "w") as f:
                f.write(text)
    except OSError:
        pass


def _bring_up_loopback() -> None:
    # A new namespace starts with "lo" down; libraries that talk to localhost (e.g. torch.distributed) need it up.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack("16sH14x", b"lo", 0)
            flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    except OSError:
        pass


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


_LIBC: ctypes.CDLL | None = None


# --------------------------------------------------------------------------- host-memory watchdog (also used warm)


class MemoryWatch(PolledLimit):
    """Polls the summed resident memory of every process below root (root itself not counted).

    RLIMIT_AS cannot be used on GPU runs (CUDA reserves a huge virtual address space), and RLIMIT_RSS is a no-op on
    Linux, so resident memory is watched from outside instead: the caller kills the tree once over() says so.

    Where the run keeps a uid that RLIMIT_NPROC does not bound (root, as GPU runs do), it also counts the tree's tasks
    (processes and threads), max_tasks at most: an outside attacker's thread flood reached 28116 tasks of the host's
    32768 pids on the GPU rules. A poll, like the memory: a flood may overshoot by what it starts in one interval.
    """

    def __init__(self, root: int, limit_bytes: int | None, max_tasks: int | None = None) -> None:
        super().__init__(limit_bytes)
        self.root = root
        self.max_tasks = max_tasks
        self.tasks_peak = 0
        self.tasks_exceeded = False

    def _measure(self) -> tuple[int, bool]:
        pids = _descendants(self.root)
        used = sum(_rss_bytes(pid) for pid in pids)
        if self.max_tasks is not None:
            tasks = sum(_task_count(pid) for pid in pids)
            self.tasks_peak = max(self.tasks_peak, tasks)
            self.tasks_exceeded = tasks > self.max_tasks
        return used, used > self.limit_bytes or self.tasks_exceeded

    def report(self) -> dict:
        """The status fields both sandbox paths send back."""
        tasks = {"tasks_peak": self.tasks_peak, "tasks_limit": self.max_tasks} if self.max_tasks is not None else {}
        if self.limit_bytes is None:
            return {"rss_peak_bytes": None, "rss_limit_bytes": None, **tasks}
        return {"rss_peak_bytes": self.peak_bytes, "rss_limit_bytes": self.limit_bytes, **tasks}


def _task_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0  # ended meanwhile


def _descendants(root: int) -> list[int]:
    if _HAS_CHILDREN_FILES:
        found, stack = [], [root]
        while stack:
            for child in _children_of(stack.pop()):
                found.append(child)
                stack.append(child)
        return found
    return list(_live_descendants(root))  # one scan of all of /proc


def _children_of(pid: int) -> list[int]:
    """Children of every thread of pid (a thread's children are listed under that thread only)."""
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for tid in threads:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                children.extend(int(child) for child in f.read().split())
        except OSError:
            continue  # the thread or process ended meanwhile
    return children


def _rss_bytes(pid: int) -> int:
    """Resident anonymous + shared-memory bytes of pid. File-backed pages (torch's and CUDA's libraries, mapped
    files) are left out: the kernel can drop them, and counting them would charge each process of the tree again for
    the same libraries."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    fields = dict(line.split(b":", 1) for line in lines if b":" in line)
    if b"RssAnon" not in fields:  # kernels before 4.5: total resident memory is the best we have
        return _kib(fields.get(b"VmRSS", b"0 kB"))
    return _kib(fields[b"RssAnon"]) + _kib(fields.get(b"RssShmem", b"0 kB"))


def _kib(value: bytes) -> int:
    return int(value.split()[0]) * 1024


_HAS_CHILDREN_FILES = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def memory_note(limit_bytes: int, peak_bytes: int) -> str:
    """The stderr line both sandbox paths add when the watchdog killed a run."""
    return (
        f"[sandbox: the process tree used more than {limit_bytes / 1024**3:.3g} GiB of host memory "
        f"({peak_bytes / 1024**3:.2f} GiB resident when sampled); killed]"
    )


# --------------------------------------------------------------------------- the reaper process


def _netns_id() -> str:
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def _become_subreaper(parent_pid: int) -> None:
    libc = _libc()
    # Orphans (double-forked daemons, setsid'd grandchildren) get reparented to us instead of init, so we can find them.
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # If the agent process dies we get SIGTERM and clean up instead of leaving the command running.
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)  # parent died before prctl took effect


def _spawn(argv: list[str], limits: SandboxLimits, original_mask: set) -> tuple[int, dict]:
    """Fork+exec the command with limits applied; return (pid, the confinement record the child sent).

    An exec failure is reported like a shell does: a message on the command's stderr and exit status 127/126.
    """
    own_netns = _netns_id()
    report_r, report_w = os.pipe()  # close-on-exec, so EOF means exec happened (or the child died)
    pid = os.fork()
    if pid == 0:
        _exec_child(argv, limits, original_mask, own_netns, report_w)
    os.close(report_w)
    report = b""
    while chunk := os.read(report_r, 64):
        report += chunk
    os.close(report_r)
    return pid, read_isolation_report(report)


def _exec_child(argv: list[str], limits: SandboxLimits, original_mask: set, own_netns: str, report_w: int) -> None:
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, original_mask)  # a blocked mask would survive exec
        facts = apply_limits_in_child(limits)
        # Report what actually happened rather than what was asked for.
        os.write(report_w, isolation_report(own_netns, facts))
        os.execvp(argv[0], argv)
    except BaseException as exc:  # noqa: B036 - nothing may escape a forked child
        try:
            os.write(2, f"sandbox: cannot run {argv[0]!r}: {exc}\n".encode())
        finally:
            os._exit(127 if isinstance(exc, FileNotFoundError) else 126)


def _exited_children() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, reaping each; stops when none is left to reap now."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _reap_exited_children(main_pid: int) -> int | None:
    """Reap every exited child; return main_pid's wait status if it was among them."""
    found = None
    for pid, status in _exited_children():
        if pid == main_pid:
            found = status
    return found


def _wait_for_main_child(
    main_pid: int, backstop_s: float, watch: MemoryWatch, folder: FolderWatch | None = None
) -> tuple[int | None, str]:
    """Block until the command exits, we are told to stop (SIGTERM, backstop), the tree uses too much memory or its
    folder grows past its quota.

    Returns (wait status or None, why: "exited", "stopped", "memory" or "disk").
    """
    deadline = time.monotonic() + backstop_s
    folder = folder or FolderWatch("", None)
    while True:
        status = _reap_exited_children(main_pid)
        if status is not None:
            return status, "exited"
        if watch.over():
            return None, "memory"
        if folder.over():
            return None, "disk"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "stopped"
        info = signal.sigtimedwait(_WAKE_SIGNALS, min(watch.wait_s(remaining), folder.wait_s(remaining)))
        if info is not None and info.si_signo != signal.SIGCHLD:
            return None, "stopped"


def end_of_run_status(
    wait_status: int | None, why: str, watch: MemoryWatch, folder: FolderWatch, leftovers: int, facts: dict
) -> dict:
    """The status both sandbox paths send back once the tree is dead."""
    return {
        "wait_status": wait_status,
        "stopped": why == "stopped",
        "memory_exceeded": why == "memory" and not watch.tasks_exceeded,
        "tasks_exceeded": why == "memory" and watch.tasks_exceeded,
        "disk_exceeded": why == "disk",
        **watch.report(),
        **folder.report(),
        "leftovers_killed": leftovers,
        "cleanup_complete": not _has_children(),  # False only if something stayed unkillable (e.g. stuck in a driver)
        "network_isolated": bool(facts.get("network_isolated")),
        "filesystem_confined": bool(facts.get("filesystem_confined")),
        "confinement": facts,
    }


def kill_all_descendants(exclude_pid: int | None = None, deadline_s: float = _CLEANUP_DEADLINE_S) -> int:
    """SIGKILL and reap every descendant of this (subreaper) process; return how many, not counting exclude_pid."""
    killed: set[int] = set()
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if not _has_children():
            break  # as a subreaper, no children means no descendants at all
        live = _live_descendants(os.getpid())
        for pid, start_time in live.items():
            if _kill_exact(pid, start_time) and pid != exclude_pid:
                killed.add(pid)
        time.sleep(0.001)  # let SIGKILL land before the next scan
    return len(killed)


def _has_children() -> bool:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _live_descendants(root: int) -> dict[int, int]:
    """pid -> start time of every non-zombie process below root, from one scan of /proc."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[bytes, int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (stat := _read_stat(int(name))) is not None:
            ppid, state, start_time = stat
            children.setdefault(ppid, []).append(int(name))
            info[int(name)] = (state, start_time)
    live: dict[int, int] = {}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            stack.append(child)
            state, start_time = info[child]
            if state != b"Z":
                live[child] = start_time
    return live


def _read_stat(pid: int) -> tuple[int, bytes, int] | None:
    """(ppid, state, start time) from /proc/PID/stat, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()  # comm may contain spaces and parentheses
    return int(fields[1]), fields[0], int(fields[19])


def _kill_exact(pid: int, start_time: int) -> bool:
    """SIGKILL pid only if it is still the process we scanned (a pidfd pins it, start time rules out pid reuse)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    except (AttributeError, OSError):  # no pidfd support: accept the tiny pid-reuse window
        return _start_time_matches(pid, start_time) and _send_kill(lambda: os.kill(pid, signal.SIGKILL))
    try:
        return _start_time_matches(pid, start_time) and _send_kill(
            lambda: signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        )
    finally:
        os.close(pidfd)


def _start_time_matches(pid: int, start_time: int) -> bool:
    stat = _read_stat(pid)
    return stat is not None and stat[2] == start_time


def _send_kill(send) -> bool:
    try:
        send()
        return True
    except ProcessLookupError:
        return False


def run_reaper(config: dict) -> dict:
    """Run the command, wait for it (or for SIGTERM), kill whatever is left; return the status for the parent."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would auto-reap and hide exit statuses
    # Signals are taken synchronously (sigtimedwait), so nothing can interrupt the cleanup halfway.
    original_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAKE_SIGNALS)
    _become_subreaper(config["parent_pid"])
    limits = types.SimpleNamespace(**config["limits"])
    pid, facts = _spawn(config["argv"], limits, original_mask)
    watch = MemoryWatch(os.getpid(), getattr(limits, "rss_bytes", None), tasks_watched(limits, facts))
    # Our stdout and stderr are the run's capture files (runner.capture_files).
    folder = FolderWatch(os.getcwd(), getattr(limits, "folder_bytes", None), tree_root=os.getpid(), held=(1, 2))
    wait_status, why = _wait_for_main_child(pid, config["backstop_s"], watch, folder)
    leftovers = kill_all_descendants(exclude_pid=pid)
    kill_uid(getattr(limits, "run_as_uid", None))
    return end_of_run_status(wait_status, why, watch, folder, leftovers, facts)


def main(argv: list[str]) -> int:
    status_fd = int(argv[1])
    os.set_inheritable(status_fd, False)  # the command must not be able to forge our report
    status = run_reaper(json.loads(argv[2]))
    os.write(status_fd, json.dumps(status).encode())
    os.close(status_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
