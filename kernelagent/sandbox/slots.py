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

__all__ = [
    "GpuSlots",
    "GpuUnavailable",
    "Placement",
    "gpu_facts",
    "gpu_identity",
    "gpu_placement",
    "holding",
    "pinned_env",
    "restrict_gpus",
    "shared_slots",
    "use_placer",
    "visible_gpus",
]

DEFAULT_SLOTS_PER_GPU = 2
# A GPU whose runs failed for reasons of the device (its judge could not start, the device went away) this many
# times in a row, with no success between, takes no new runs: they go to the other GPUs.
FAILURES_TO_RETIRE = 2


class GpuUnavailable(RuntimeError):
    """Every GPU of the slots was retired after device failures: nothing left to place a run on."""


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

    Shared requests go to the least-loaded device (ties: the first listed; a device that just failed last). An
    exclusive request reserves the least-loaded device at once, so no new shared holder lands there while it waits
    for the current ones to leave; requests of each kind are served first come, first served, so nobody starves.
    A device that fails repeatedly is retired (device_failed): the work goes on on the others.
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
        self._failures = dict.fromkeys(self.devices, 0)  # device failures in a row
        self._retired: dict[str, str] = {}  # device -> why it takes no new runs

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

    def device_failed(self, device: str, reason: str) -> bool:
        """A run on `device` failed because of the device, not the candidate (its judge could not start there, the
        device disappeared). After FAILURES_TO_RETIRE in a row the device is retired: runs waiting for a slot and
        new ones go to the other GPUs. Returns whether it is retired now."""
        with self._cond:
            if device not in self._failures:
                return False
            self._failures[device] += 1
            if self._failures[device] >= FAILURES_TO_RETIRE and device not in self._retired:
                self._retired[device] = reason
                self._cond.notify_all()  # waiters re-pick among the GPUs left, or learn there are none
            return device in self._retired

    def device_worked(self, device: str) -> None:
        """A run on `device` got as far as the device's side working: its failure count starts again."""
        with self._cond:
            if device in self._failures:
                self._failures[device] = 0

    def retired(self) -> dict[str, str]:
        """{device: reason} for every retired GPU."""
        with self._cond:
            return dict(self._retired)

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
        if len(self._retired) == len(self.devices):
            raise GpuUnavailable(f"every GPU failed and was retired: {self._retired}")
        free = [
            d
            for d in self.devices
            if d not in self._reserved and d not in self._retired and (not shared or self._shared[d] < self.per_gpu)
        ]
        # A GPU that just failed comes last until it works again; min keeps the first of equals.
        return min(free, key=lambda d: (self._failures[d] > 0, self._shared[d]), default=None)

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


def restrict_gpus(count: int | None) -> list[str]:
    """Use only the first `count` visible GPUs from now on in this process (and in what it starts: KERNELAGENT_GPUS
    is set); None: all. Returns the GPUs in use. For `--gpus N`, e.g. to compare one GPU with two."""
    if count is None:
        return visible_gpus()
    if count < 0:
        raise ValueError("the GPU count must be 0 or more")
    chosen = visible_gpus()[:count]
    os.environ["KERNELAGENT_GPUS"] = ",".join(chosen)
    _reset_shared_slots()
    return chosen


_SMI_FIELDS = ("index", "uuid", "name", "pci.bus_id")


def gpu_identity(gpu: str | None) -> dict:
    """{"index", "uuid", "name", "pci_bus_id"} of the physical GPU that CUDA_VISIBLE_DEVICES=gpu names (an index or
    a UUID), from nvidia-smi (NVML in another process: no CUDA context here); {} when unknown (no nvidia-smi, a MIG
    instance, a fake id in tests)."""
    if gpu is None:
        return {}
    for row in _smi_gpus():
        if gpu in (row["index"], row["uuid"]) or (gpu.startswith("GPU-") and row["uuid"].startswith(gpu)):
            return dict(row)
    return {}


def gpu_facts(gpu: str | None) -> dict:
    """What a verdict or timing records about where it ran: {"gpu": slot id, "gpu_index", "gpu_uuid", "gpu_name"}
    (identity keys only where nvidia-smi knows the GPU); {} for an unpinned run."""
    if gpu is None:
        return {}
    identity = gpu_identity(gpu)
    return {"gpu": gpu, **{f"gpu_{key}": value for key, value in identity.items() if key != "pci_bus_id"}}


_smi_rows: list[dict] | None = None
_smi_lock = threading.Lock()


def _smi_gpus() -> list[dict]:
    """nvidia-smi's GPUs, asked once per process (a run records thousands of placements)."""
    global _smi_rows
    with _smi_lock:
        if _smi_rows is None:
            _smi_rows = _query_smi()
        return _smi_rows


def _query_smi() -> list[dict]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    command = [smi, f"--query-gpu={','.join(_SMI_FIELDS)}", "--format=csv,noheader"]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in listing.splitlines():
        values = [value.strip() for value in line.split(",")]
        if len(values) == len(_SMI_FIELDS) and values[0].isdigit():
            rows.append({"index": values[0], "uuid": values[1], "name": values[2], "pci_bus_id": values[3]})
    return rows


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


def slots_per_gpu() -> int:
    """Shared verification runs per GPU (KERNELAGENT_SLOTS_PER_GPU, default 2)."""
    return int(os.environ.get("KERNELAGENT_SLOTS_PER_GPU", DEFAULT_SLOTS_PER_GPU))


def shared_slots(per_gpu: int | None = None) -> GpuSlots:
    """The process-wide slots, created on first use from visible_gpus() and KERNELAGENT_SLOTS_PER_GPU (default 2),
    or the placer installed with use_placer (the Ray executor's, which leases GPUs from Ray).

    per_gpu applies only to the call that creates them; later calls get the same object whatever they pass.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = GpuSlots(visible_gpus(), per_gpu or slots_per_gpu())
        return _shared


def use_placer(placer: GpuSlots) -> None:
    """Place this process's GPU runs with `placer` from now on: anything with GpuSlots' acquire(exclusive), devices,
    history(), device_failed() and device_worked() (the Ray executor installs one that leases GPUs from Ray, so that
    its tasks and this process's timing never share a GPU)."""
    global _shared
    with _shared_lock:
        _shared = placer


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


@contextmanager
def holding(gpu: str | None) -> Iterator[None]:
    """Runs in this block (this thread) are on `gpu`, placed by someone else: a Ray task is given its GPU by Ray, so
    gpu_placement inside yields that GPU and never queues in this process's own slots."""
    before = getattr(_held, "gpu", None)
    _held.gpu = gpu
    try:
        yield
    finally:
        _held.gpu = before


def device_failed(gpu: str | None, reason: str) -> bool:
    """Tell the process-wide placer that `gpu` failed as a device (see GpuSlots.device_failed)."""
    return gpu is not None and shared_slots().device_failed(gpu, reason)


def device_worked(gpu: str | None) -> None:
    """Tell the process-wide placer that `gpu` worked (its failures in a row start again)."""
    if gpu is not None and _shared is not None:
        _shared.device_worked(gpu)


def pinned_env(env: Mapping[str, str], gpu: str | None) -> dict[str, str]:
    """env with CUDA_VISIBLE_DEVICES set to the slot's GPU (unchanged when gpu is None)."""
    return dict(env) if gpu is None else {**env, "CUDA_VISIBLE_DEVICES": gpu}
