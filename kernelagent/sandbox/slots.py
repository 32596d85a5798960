"""GPU slots: sandboxed GPU runs are placed on the visible GPUs, a few per GPU, and pinned through
CUDA_VISIBLE_DEVICES; timing runs get a GPU to themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass

__all__ = ["GpuSlots", "Placement", "gpu_placement", "pinned_env", "shared_slots", "visible_gpus"]

DEFAULT_SLOTS_PER_GPU = 2
_HISTORY_LIMIT = 10_000  # placements kept for run records; a long run must not grow without bound


@dataclass(frozen=True)
class Placement:
    """One finished holding of a slot: which GPU, when (the slots' clock), and whether it was exclusive."""

    device: str
    start: float
    end: float
    exclusive: bool
    waited_s: float  # time spent queueing for the slot, by time.monotonic

    def as_dict(self) -> dict:
        return asdict(self)


class GpuSlots:
    """Thread-safe placement of runs on GPUs: up to per_gpu shared holders per device, or one exclusive holder.

    Shared requests go to the least-loaded device (ties: the first listed). An exclusive request reserves the
    least-loaded device at once, so no new shared holder lands there while it waits for the current ones to leave;
    requests of each kind are served first come, first served, so nobody starves.
    """

    def __init__(self, devices: Sequence[str], per_gpu: int, *, clock: Callable[[], float] = time.time) -> None:
        if per_gpu < 1:
            raise ValueError("per_gpu must be at least 1")
        self.devices = tuple(str(device) for device in devices)
        if len(set(self.devices)) != len(self.devices):
            raise ValueError(f"duplicate GPU ids in {list(self.devices)}")
        self.per_gpu = per_gpu
        self._clock = clock
        self._cond = threading.Condition()
        self._shared = dict.fromkeys(self.devices, 0)
        self._reserved: set[str] = set()  # held by, or draining for, an exclusive holder
        self._shared_queue: deque[object] = deque()
        self._exclusive_queue: deque[object] = deque()
        self._history: deque[Placement] = deque(maxlen=_HISTORY_LIMIT)

    @contextmanager
    def acquire(self, exclusive: bool = False) -> Iterator[str]:
        """Hold a slot for the duration of the block; yields the physical GPU id to put in CUDA_VISIBLE_DEVICES."""
        if not self.devices:
            raise RuntimeError("no GPU to place the run on")
        queued = time.monotonic()
        device, start = self._take_exclusive() if exclusive else self._take_shared()
        waited_s = time.monotonic() - queued
        try:
            yield device
        finally:
            self._release(device, exclusive, start, waited_s)

    def history(self) -> list[Placement]:
        """Finished placements, oldest first (the last 10,000)."""
        with self._cond:
            return list(self._history)

    def load(self) -> dict[str, dict]:
        """Now: {device: {"shared": holders, "reserved": held or awaited by an exclusive holder}}."""
        with self._cond:
            return {d: {"shared": self._shared[d], "reserved": d in self._reserved} for d in self.devices}

    def _take_shared(self) -> tuple[str, float]:
        with self._cond:
            ticket = object()
            self._shared_queue.append(ticket)
            try:
                while True:
                    device = self._least_loaded(shared=True) if self._shared_queue[0] is ticket else None
                    if device is not None:
                        self._shared_queue.popleft()
                        self._shared[device] += 1
                        self._cond.notify_all()  # the next in line may fit too
                        return device, self._clock()
                    self._cond.wait()
            except BaseException:
                self._abandon(self._shared_queue, ticket)
                raise

    def _take_exclusive(self) -> tuple[str, float]:
        with self._cond:
            ticket = object()
            self._exclusive_queue.append(ticket)
            try:
                while (device := self._exclusive_candidate(ticket)) is None:
                    self._cond.wait()
            except BaseException:
                self._abandon(self._exclusive_queue, ticket)
                raise
            self._exclusive_queue.popleft()
            self._reserved.add(device)  # from now on no new shared holder lands here
            self._cond.notify_all()
            try:
                while self._shared[device]:
                    self._cond.wait()
            except BaseException:
                self._reserved.discard(device)
                self._cond.notify_all()
                raise
            return device, self._clock()

    def _exclusive_candidate(self, ticket: object) -> str | None:
        # Only the first exclusive request in line may reserve: a later one must not overtake it.
        return self._least_loaded(shared=False) if self._exclusive_queue[0] is ticket else None

    def _least_loaded(self, *, shared: bool) -> str | None:
        """The unreserved device with the fewest shared holders (and, for shared, a free slot); None if none."""
        free = [d for d in self.devices if d not in self._reserved and (not shared or self._shared[d] < self.per_gpu)]
        return min(free, key=lambda d: self._shared[d], default=None)  # min keeps the first of equals

    def _abandon(self, queue: deque[object], ticket: object) -> None:
        if ticket in queue:
            queue.remove(ticket)
        self._cond.notify_all()

    def _release(self, device: str, exclusive: bool, start: float, waited_s: float) -> None:
        with self._cond:
            if exclusive:
                self._reserved.discard(device)
            else:
                self._shared[device] -= 1
            self._history.append(Placement(device, start, self._clock(), exclusive, round(waited_s, 6)))
            self._cond.notify_all()


# --------------------------------------------------------------------------- the process-wide slots


def visible_gpus() -> list[str]:
    """Physical ids of the GPUs runs may use, without initialising CUDA in this process.

    In order: KERNELAGENT_GPUS ("0,1,2,3"; empty means none), the parent's CUDA_VISIBLE_DEVICES (ids or UUIDs,
    passed on as they are), `nvidia-smi -L`, and last torch.cuda.device_count(), which asks NVML first and so does
    not create a CUDA context (only where NVML is missing does it initialise the driver; still no context).
    """
    for var in ("KERNELAGENT_GPUS", "CUDA_VISIBLE_DEVICES"):
        listed = os.environ.get(var)
        if listed is not None:
            return _parse_device_list(listed)
    count = _count_with_nvidia_smi()
    if count is None:
        count = _count_with_torch()
    return [str(i) for i in range(count)]


def _parse_device_list(listed: str) -> list[str]:
    devices = []
    for entry in (part.strip() for part in listed.split(",")):
        if not entry or entry.startswith("-"):
            break  # CUDA stops enumerating at the first invalid entry ("-1" hides every GPU)
        devices.append(entry)
    return devices


def _count_with_nvidia_smi() -> int | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))  # MIG instances are indented lines


def _count_with_torch() -> int:
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch
        except ImportError:
            return 0
    return int(torch.cuda.device_count())


_shared: GpuSlots | None = None
_shared_lock = threading.Lock()


def shared_slots(per_gpu: int | None = None) -> GpuSlots:
    """The process-wide slots, created on first use from visible_gpus() and KERNELAGENT_SLOTS_PER_GPU (default 2).

    per_gpu applies only to the call that creates them; later calls get the same object whatever they pass.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            count = per_gpu or int(os.environ.get("KERNELAGENT_SLOTS_PER_GPU", DEFAULT_SLOTS_PER_GPU))
            _shared = GpuSlots(visible_gpus(), count)
        return _shared


def _reset_shared_slots() -> None:
    """Forget the process-wide slots (tests; a process whose GPUs changed)."""
    global _shared
    with _shared_lock:
        _shared = None


_held = threading.local()


@contextmanager
def gpu_placement(device: str, *, exclusive: bool = False) -> Iterator[str | None]:
    """A slot of shared_slots() for a run on `device`; yields its GPU id, or None for CPU runs (which never touch the
    slots) and where no GPU is known (then the run is not pinned, as before slots existed).

    Inside a placement of the same thread it yields that placement's GPU again: waiting for a slot that this very
    thread holds would deadlock.
    """
    if device == "cpu":
        yield None
        return
    slots = shared_slots()
    held = getattr(_held, "gpu", None)
    if not slots.devices or held is not None:
        yield held
        return
    with slots.acquire(exclusive) as gpu:
        _held.gpu = gpu
        try:
            yield gpu
        finally:
            _held.gpu = None


def pinned_env(env: Mapping[str, str], gpu: str | None) -> dict[str, str]:
    """env with CUDA_VISIBLE_DEVICES set to the slot's GPU (unchanged when gpu is None)."""
    return dict(env) if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu}
