"""Runtime anti-cheat, inside the candidate's process: records the aten ops its forward runs and its Triton launches.

Any aten op that computes (rather than allocates, copies, or views) fails the candidate, wherever it runs: in the
forward, in a helper, or in a grid lambda evaluated inside a launch. Triton's CPU interpreter moves data with
aten ops (set_, copy_, empty) while it runs a kernel, which is why those are allowed everywhere.
"""

from __future__ import annotations

import threading

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# Ops that allocate, move, reinterpret or query memory. Everything else is compute and must happen in Triton.
ALLOWED_OPS = frozenset(
    """
    empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like new_zeros ones ones_like new_ones
    full full_like new_full fill_ zero_ arange copy_ clone _to_copy detach detach_ alias lift_fresh lift_fresh_copy
    set_ view _unsafe_view reshape _reshape_alias as_strided as_strided_ expand permute transpose t unsqueeze
    squeeze unsqueeze_ squeeze_ transpose_ t_ slice select narrow split split_with_sizes chunk unbind view_as
    expand_as movedim unfold diagonal _local_scalar_dense is_nonzero sym_size sym_stride sym_numel
    sym_storage_offset stride size numel dim is_contiguous resize_ record_stream real imag view_as_real
    view_as_complex _conj _neg_view _has_compatible_shallow_copy_type contiguous _pin_memory pin_memory
    resolve_conj resolve_neg
    """.split()
)


class OpRecorder(TorchDispatchMode):
    """Records every compute op that runs while active."""

    def __init__(self) -> None:
        super().__init__()
        self.compute_ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        name = func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else str(func)
        if name not in ALLOWED_OPS and len(self.compute_ops) < 100:
            self.compute_ops.append(str(func))
        return func(*args, **(kwargs or {}))


class LaunchCounter:
    """Counts outermost Triton launches by wrapping `run` on every KernelInterface class (jit, autotune, ...)."""

    def __init__(self) -> None:
        self.launches = 0
        self._depth = threading.local()

    def install(self) -> None:
        from triton.runtime.jit import KernelInterface

        for cls in _all_subclasses(KernelInterface):
            if "run" in cls.__dict__:
                cls.run = self._wrap(cls.run)

    def _wrap(self, run):  # noqa: ANN001, ANN202
        counter = self

        def counted_run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            depth = getattr(counter._depth, "value", 0)
            if depth == 0:
                counter.launches += 1
            counter._depth.value = depth + 1
            try:
                return run(*args, **kwargs)
            finally:
                counter._depth.value = depth

        counted_run.__wrapped__ = run
        return counted_run


def _all_subclasses(cls: type) -> list[type]:
    found, stack = [], [cls]
    while stack:
        current = stack.pop()
        for sub in current.__subclasses__():
            if sub not in found:
                found.append(sub)
                stack.append(sub)
    return found


def protected_functions() -> dict[str, object]:
    """Identities the candidate must not replace; checked after its forward runs."""
    import builtins
    import json

    return {
        "torch.allclose": torch.allclose,
        "torch.testing.assert_close": torch.testing.assert_close,
        "torch.save": torch.save,
        "torch.equal": torch.equal,
        "torch.Tensor.__eq__": torch.Tensor.__eq__,
        "torch.Tensor.cpu": torch.Tensor.cpu,
        "torch.Tensor.detach": torch.Tensor.detach,
        "torch.Tensor.clone": torch.Tensor.clone,
        "json.dumps": json.dumps,
        "builtins.open": builtins.open,
        "OpRecorder.__torch_dispatch__": OpRecorder.__torch_dispatch__,
        "TorchDispatchMode.__enter__": TorchDispatchMode.__enter__,
        "LaunchCounter._wrap": LaunchCounter._wrap,
    }


def changed_functions(before: dict[str, object]) -> list[str]:
    after = protected_functions()
    return [name for name, fn in before.items() if after.get(name) is not fn]
