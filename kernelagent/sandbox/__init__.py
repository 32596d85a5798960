"""Isolated execution of untrusted (generated) code: scrubbed env, rlimits, no network, nothing left running."""

from kernelagent.sandbox.runner import (
    SandboxLimits,
    SandboxResult,
    apply_limits_in_child,
    run_sandboxed,
    scrubbed_env,
)

__all__ = ["SandboxLimits", "SandboxResult", "apply_limits_in_child", "run_sandboxed", "scrubbed_env"]
