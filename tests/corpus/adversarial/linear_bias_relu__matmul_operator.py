"""Cheat: the matmul is done with the @ operator; only bias+relu is a kernel."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=m), mask=m)


@triton.jit
def bias_relu_kernel(y_ptr, b_ptr, out_ptr, N, total, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < total
    y = tl.load(y_ptr + offs, mask=m) + tl.load(b_ptr + offs % N, mask=m)
    tl.store(out_ptr + offs, tl.maximum(y, 0.0), mask=m)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        y = (x @ self.linear.weight.t()).contiguous()
        out = torch.empty_like(y)
        bias_relu_kernel[(triton.cdiv(y.numel(), 256),)](y, self.linear.bias, out, y.shape[1], y.numel(), BLOCK=256)
        return out
