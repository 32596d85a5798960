"""Isolated execution of untrusted (generated) code: scrubbed env, rlimits, no network, nothing left running."""

from kernelagent.sandbox.runner import (
    SandboxLimits,
    SandboxResult,
    apply_limits_in_child,
    run_sandboxed,
    scrubbed_env,
)
from kernelagent.sandbox.warm import WarmPool, WarmPoolError, run_sandboxed_warm, shared_pool

__all__ = [
    "SandboxLimits",
    "SandboxResult",
    "WarmPool",
    "WarmPoolError",
    "apply_limits_in_child",
    "run_sandboxed",
    "run_sandboxed_warm",
    "scrubbed_env",
    "shared_pool",
]
