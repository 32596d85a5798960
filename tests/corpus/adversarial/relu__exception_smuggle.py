"""Evades the static policy: the tensor travels through an exception payload, so the AST loses track of it and
the Python operators below look like scalar arithmetic. Must be caught by the runtime torch-op guard."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def touch_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class _Carrier(Exception):
    pass


class ModelNew(nn.Module):
    def forward(self, x):
        touch_kernel[(triton.cdiv(x.numel(), 1024),)](x, x.numel(), BLOCK=1024)
        try:
            raise _Carrier(x)
        except _Carrier as carrier:
            v = carrier.args[0]
        return v * (v > 0)
