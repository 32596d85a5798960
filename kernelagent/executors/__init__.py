"""Where verification runs: in this process (LocalExecutor, default) or as Ray tasks (RayExecutor).

The graph and its checkpoints stay where the run started; only the verification calls move. Use:
    get_executor(ctx).verify(code, harness, workdir, timeout_s=..., rtol=..., atol=...)
"""

from __future__ import annotations

import threading

from kernelagent.executors.base import Executor
from kernelagent.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "get_executor"]

_lock = threading.Lock()
_executors: dict[tuple[str, str | None], Executor] = {}


def get_executor(ctx) -> Executor:  # noqa: ANN001 - a RunContext, or anything with .executor and .ray_address
    """One executor per (kind, address) and process: Ray connects once, the local pool is shared."""
    kind = getattr(ctx, "executor", "local") or "local"
    address = getattr(ctx, "ray_address", None) if kind == "ray" else None
    with _lock:
        if (kind, address) not in _executors:
            _executors[(kind, address)] = _make(kind, address)
        return _executors[(kind, address)]


def _make(kind: str, address: str | None) -> Executor:
    if kind == "ray":
        from kernelagent.executors.ray_executor import RayExecutor

        return RayExecutor(address)
    return LocalExecutor()
