"""GPU placements of the driver's own work (timing, preparing a reference) leased from Ray, when verification runs on
Ray on the driver's host: Ray then owns every GPU placement there, so a timing never shares its GPU with a task.

A lease is a Ray task pinned to this node that asks for the GPU share (a whole GPU when exclusive), tells a small
actor which GPU Ray gave it, and waits until the driver is done: while it waits, Ray counts the GPU as in use.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from kernelagent.sandbox.slots import Placement, visible_gpus

_HISTORY_LIMIT = 10_000


class LeaseGate:
    """The meeting point of a lease task and the driver (a Ray actor, async: many leases wait in it at once)."""

    def __init__(self) -> None:
        self._granted: dict[str, asyncio.Future] = {}
        self._released: dict[str, asyncio.Event] = {}

    def _futures(self, key: str) -> tuple[asyncio.Future, asyncio.Event]:
        if key not in self._granted:
            self._granted[key] = asyncio.get_running_loop().create_future()
            self._released[key] = asyncio.Event()
        return self._granted[key], self._released[key]

    async def hold(self, key: str, gpu: str | None) -> None:
        """Called by the lease task once Ray runs it: hand the GPU over, then wait for the driver to release."""
        granted, released = self._futures(key)
        if not granted.done():
            granted.set_result(gpu)
        await released.wait()
        self._granted.pop(key, None)
        self._released.pop(key, None)

    async def granted(self, key: str) -> str | None:
        granted, _ = self._futures(key)
        return await granted

    async def release(self, key: str) -> None:
        _, released = self._futures(key)
        released.set()


def hold_gpu(gate, key: str) -> None:  # noqa: ANN001 - the gate actor's handle
    """The lease task: holds its GPU share for as long as the driver's run needs it."""
    import ray

    ids = ray.get_gpu_ids()
    ray.get(gate.hold.remote(key, str(ids[0]) if ids else None))


class RayGpuLeases:
    """GpuSlots' interface (acquire, devices, history, device_failed, device_worked) with Ray doing the placing."""

    def __init__(self, ray, per_gpu: int) -> None:  # noqa: ANN001 - the ray module
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self._ray = ray
        self.per_gpu = per_gpu
        self.devices = tuple(visible_gpus()) or ("ray",)  # non-empty: runs here are pinned to what Ray gives
        self._gate = ray.remote(num_cpus=0)(LeaseGate).remote()
        self._hold = ray.remote(hold_gpu)
        here = ray.get_runtime_context().get_node_id()
        self._where = NodeAffinitySchedulingStrategy(node_id=here, soft=False)  # the GPU must be on this host
        self._history: deque[Placement] = deque(maxlen=_HISTORY_LIMIT)
        self._lock = threading.Lock()

    @contextmanager
    def acquire(self, exclusive: bool = False) -> Iterator[str]:
        key = uuid.uuid4().hex
        queued = time.monotonic()
        share = 1 if exclusive else 1 / self.per_gpu
        task = self._hold.options(num_cpus=0, num_gpus=share, scheduling_strategy=self._where).remote(self._gate, key)
        try:
            granted = self._gate.granted.remote(key)
            ready, _ = self._ray.wait([granted, task], num_returns=1)
            if granted not in ready:  # the lease task ended first: it failed (its error is raised here)
                self._ray.get(task)
                raise RuntimeError("the GPU lease task ended without holding a GPU")
            gpu = self._ray.get(granted)
        except BaseException:
            self._gate.release.remote(key)  # a lease that starts later returns at once
            raise
        waited_s = time.monotonic() - queued
        start = time.time()
        try:
            yield gpu
        finally:
            self._gate.release.remote(key)
            self._ray.get(task)  # the share is Ray's again only once the task has ended
            with self._lock:
                self._history.append(Placement(gpu, start, time.time(), exclusive, round(waited_s, 6)))

    def history(self) -> list[Placement]:
        with self._lock:
            return list(self._history)

    def device_failed(self, device: str, reason: str) -> bool:
        return False  # Ray places; a failing GPU fails the tasks on it and Ray's own health checks take it out

    def device_worked(self, device: str) -> None:
        pass
