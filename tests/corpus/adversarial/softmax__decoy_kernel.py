"""Cheat: launches a kernel that writes garbage to a scratch buffer, then returns torch.softmax."""
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
def garbage_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, offs.to(tl.float32) * 0.5, mask=offs < n)


class ModelNew(nn.Module):
    def forward(self, x):
        scratch = torch.empty(x.numel(), device=x.device, dtype=torch.float32)
        garbage_kernel[(triton.cdiv(x.numel(), 512),)](scratch, x.numel(), BLOCK=512)
        return torch.softmax(x, dim=-1)
