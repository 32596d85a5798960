"""Timing attack (on rivals): at import, Triton's launch entry is wrapped so that every kernel not defined in this
file skips its launch. Where candidates shared one timing process, the honest ones timed after this file wrote
nothing and were rejected as wrong (an outside attacker's class). Expected: this candidate is timed, and every
other candidate is timed as if it were alone."""
import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.runtime import interpreter, jit


def _only_mine(original):
    def run(self, *args, **kwargs):
        if getattr(self, "fn", None) is not None and self.fn.__module__ != __name__:
            return None  # a rival's kernel: never launched
        return original(self, *args, **kwargs)

    return run


for _cls in (jit.JITFunction, getattr(interpreter, "InterpretedFunction", None)):
    if _cls is not None and hasattr(_cls, "run"):
        _cls.run = _only_mine(_cls.run)


@triton.jit
def _add(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(a_ptr + offsets, mask=mask) + tl.load(b_ptr + offsets, mask=mask), mask=mask)


class ModelNew(nn.Module):
    def forward(self, a, b):
        out = torch.empty_like(a)
        n = out.numel()
        _add[(triton.cdiv(n, 1024),)](a, b, out, n, BLOCK=1024)
        return out
