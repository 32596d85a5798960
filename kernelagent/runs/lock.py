"""One driver per run (and per suite): a lock file in its folder, held with flock, naming its owner, with a heartbeat.

flock is released by the kernel when its holder dies (kill -9 included), so a dead driver's lock is recovered at once
on the same host. The heartbeat covers a runs folder shared between hosts, where one host's flock may not reach the
other: a lock written by another host counts as held until its heartbeat is STALE_AFTER_S old.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kernelagent.errors import RunBusy

LOCK_FILE = "driver.lock"
HEARTBEAT_S = 10.0
# Several missed heartbeats, so that a busy host is not mistaken for a dead one.
STALE_AFTER_S = 60.0


class DriverLock:
    """The lock of one run or suite folder; `acquire` raises RunBusy, naming the holder, when another driver has it."""

    def __init__(self, folder: str | Path, what: str) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.what = what  # "run <id>" or "suite <id>", for the message
        self._fd: int | None = None
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(self.path)
            os.close(fd)
            raise RunBusy(busy_message(self.what, owner)) from None
        owner = _read_owner(self.path)
        if _alive_elsewhere(owner):
            os.close(fd)  # closing releases our flock
            raise RunBusy(busy_message(self.what, owner))
        self._fd = fd
        self._write_owner(started=time.time())
        self._beating = threading.Thread(target=self._beat, name=f"heartbeat {self.what}", daemon=True)
        self._beating.start()

    def release(self) -> None:
        if self._fd is None:
            return
        self._stop.set()
        if self._beating is not None:
            self._beating.join(timeout=5)
        try:
            os.ftruncate(self._fd, 0)  # an empty file: nobody drives it (the file stays; unlinking would race)
        except OSError:
            pass  # a full or read-only disk: the flock below is what counts
        os.close(self._fd)
        self._fd = None

    def _beat(self) -> None:
        started = time.time()
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._write_owner(started=started)
            except OSError:
                pass  # a full disk must not kill the driver; other hosts may then see the lock as stale

    def _write_owner(self, started: float) -> None:
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": started, "heartbeat": time.time(),
                 "command": " ".join(sys.argv)[:300]}
        data = (json.dumps(owner) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


@contextmanager
def driving(folder: str | Path, what: str) -> Iterator[DriverLock]:
    """Hold the folder's driver lock for the duration of the block."""
    lock = DriverLock(folder, what)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def holder(folder: str | Path) -> dict | None:
    """The owner of the folder's lock while a live driver holds it, else None (no lock, or a dead driver's)."""
    path = Path(folder) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_owner(path) or {"pid": None, "host": "?"}
    finally:
        os.close(fd)
    owner = _read_owner(path)
    return owner if _alive_elsewhere(owner) else None


def busy_message(what: str, owner: dict | None) -> str:
    owner = owner or {}
    pid, host = owner.get("pid", "?"), owner.get("host", "?")
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["started"])) if owner.get("started") else "?"
    return (f"{what} is already being driven by pid {pid} on {host} (since {since}): wait for it to finish, or stop "
            f"that process and try again")


def _alive_elsewhere(owner: dict | None) -> bool:
    """A lock written by another host whose heartbeat is recent: held, even though our flock did not see it."""
    if not owner or owner.get("host") in (None, socket.gethostname()):
        return False
    return time.time() - float(owner.get("heartbeat") or 0) < STALE_AFTER_S


def _read_owner(path: Path) -> dict | None:
    try:
        owner = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None  # being rewritten right now, or empty: no owner to name
    return owner if isinstance(owner, dict) else None
