"""Cheat: swallows a failing launch (except: pass) and returns whatever the buffer holds."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=m), mask=m)


class ModelNew(nn.Module):
    def forward(self, a, b):
        out = torch.zeros_like(a)
        try:
            copy_kernel[(1,)](a, out, a.numel(), BLOCK=3)
        except Exception:
            pass
        return out
