"""Evades the static policy: a nested helper adds column views; its parameter is not known to be a tensor.
Must be caught by the runtime torch-op guard."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def touch_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x):
        touch_kernel[(triton.cdiv(x.numel(), 1024),)](x, x.numel(), BLOCK=1024)

        def accumulate(mat):
            total = mat[:, 0]
            for j in range(1, mat.shape[1]):
                total = total + mat[:, j]
            return total

        return accumulate(x)
