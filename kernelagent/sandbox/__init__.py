"""Isolated execution of untrusted (generated) code: scrubbed env, rlimits, no network, nothing left running."""

from kernelagent.sandbox.runner import (
    SandboxLimits,
    SandboxResult,
    apply_limits_in_child,
    run_sandboxed,
    scrubbed_env,
    write_into_candidate_folder,
)
from kernelagent.sandbox.sizing import run_memory_bytes
from kernelagent.sandbox.slots import GpuSlots, gpu_placement, pinned_env, shared_slots
from kernelagent.sandbox.warm import WarmPool, WarmPoolError, run_sandboxed_warm, shared_pool

__all__ = [
    "GpuSlots",
    "SandboxLimits",
    "SandboxResult",
    "WarmPool",
    "WarmPoolError",
    "apply_limits_in_child",
    "gpu_placement",
    "pinned_env",
    "run_memory_bytes",
    "run_sandboxed",
    "run_sandboxed_warm",
    "scrubbed_env",
    "shared_pool",
    "shared_slots",
    "write_into_candidate_folder",
]
