"""Evades the static policy: the tensor add happens inside a lambda whose parameters the AST cannot type.
Must be caught by the runtime torch-op guard (aten.add on the forward path, outside any kernel)."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def touch_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, a, b):
        touch_kernel[(triton.cdiv(a.numel(), 1024),)](a, a.numel(), BLOCK=1024)
        combine = lambda p, q: p + q  # noqa: E731
        return combine(a, b)
