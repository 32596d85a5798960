"""The unprivileged uid a sandboxed run becomes (the parent's half; reaper.apply_limits_in_child drops to it).

Where the agent runs as root (common in containers), each run gets a uid of its own from a pool, held under a lock
for the run's life: the kernel then keeps the candidate from signalling or tracing anything else, reading other
processes' /proc entries, creating device nodes or using any capability, whatever our rules say. Its folder is handed
to that uid for the run and taken back afterwards. Where the agent is not root, or the folder is not reachable by
another uid, the run keeps our uid and the reason is recorded (SandboxResult.confinement["uid_note"]).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
from collections.abc import Iterator
from pathlib import Path

# 1000 uids from 61000: inside the 0-65535 range that container user namespaces map, above the usual system and
# login accounts. KERNELAGENT_SANDBOX_UID_BASE moves the pool (0 turns uid separation off).
_DEFAULT_BASE, _POOL_SIZE = 61000, 1000
_LOCK_DIR = Path("/run/kernelagent-sandbox-uids") if os.path.isdir("/run") else Path("/tmp/kernelagent-sandbox-uids")


@contextlib.contextmanager
def run_identity(cwd: Path, paths: tuple[Path, ...] = ()) -> Iterator[tuple[int | None, str]]:
    """(uid or None, note) for one run in cwd; while inside, cwd (and paths below it) belong to that uid. On exit
    the folder's files are ours again, so the next holder of the uid finds nothing of this run's writable."""
    uid, note, lock = _allocate(cwd)
    if uid is None:
        yield None, note
        return
    try:
        _hand_over(cwd, uid)
        yield uid, note
    finally:
        _hand_over(cwd, os.geteuid(), os.getegid())
        os.close(lock)


def _allocate(cwd: Path) -> tuple[int | None, str, int]:
    base = int(os.environ.get("KERNELAGENT_SANDBOX_UID_BASE", _DEFAULT_BASE))
    if os.geteuid() != 0:
        return None, f"not dropped: the agent runs as uid {os.geteuid()}, not root, and cannot change uid", -1
    if base <= 0:
        return None, "not dropped: KERNELAGENT_SANDBOX_UID_BASE=0", -1
    _LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
    for uid in random.sample(range(base, base + _POOL_SIZE), _POOL_SIZE):
        fd = os.open(_LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return uid, f"uid {uid} (gid {uid}), no groups, no capabilities", fd
    return None, f"not dropped: all {_POOL_SIZE} sandbox uids from {base} are in use", -1


def reveal_plan(paths: tuple[str, ...], cwd: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """For paths the run needs (its rules' paths) that lie below a folder other uids cannot pass through (mode o-x,
    e.g. /root holding a pyenv Python, or pytest's 0700 temporary folders): (that folder, the needed paths below it).
    The child masks each such folder with an empty tmpfs in a mount namespace of its own and binds back only the
    needed paths (reaper._reveal): the run reaches them, and nothing else that lived there. cwd and what is below it
    belong to the run's uid (run_identity), so only folders above it can be closed to it."""
    plan: dict[str, list[str]] = {}
    for raw in paths:
        path = raw.split(":", 1)[1] if raw.startswith(("dir:", "rw-files:")) else raw
        if raw.startswith("dir:") or not os.path.isabs(path) or not os.path.exists(path):
            continue
        blocker = _first_closed_folder(Path(path), Path(cwd))
        if blocker is not None:
            plan.setdefault(str(blocker), []).append(path)
    return tuple((blocker, tuple(sorted(set(needed)))) for blocker, needed in sorted(plan.items()))


def _first_closed_folder(path: Path, cwd: Path) -> Path | None:
    """The topmost folder above path that another (unprivileged) uid cannot pass through, or None."""
    for folder in reversed(path.parents):
        if folder.is_relative_to(cwd):
            return None
        try:
            if not os.stat(folder).st_mode & 0o001:
                return folder
        except OSError:
            return None
    return None


def _hand_over(cwd: Path, uid: int, gid: int | None = None) -> None:
    """chown cwd and everything below it, links themselves never followed."""
    gid = uid if gid is None else gid
    for root, dirs, files in os.walk(cwd):
        for name in (*dirs, *files):
            with contextlib.suppress(OSError):
                os.lchown(os.path.join(root, name), uid, gid)
    with contextlib.suppress(OSError):
        os.lchown(cwd, uid, gid)
