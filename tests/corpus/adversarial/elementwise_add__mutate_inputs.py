"""Cheat: zeroes both inputs in place and returns zeros. A verifier that computes the reference afterwards on the
same (now zeroed) tensors sees 0 + 0 == 0; one that gives the candidate private copies catches it."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def zero_kernel(a_ptr, b_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    zero = tl.zeros((BLOCK,), dtype=tl.float32)
    tl.store(a_ptr + offs, zero, mask=m)
    tl.store(b_ptr + offs, zero, mask=m)
    tl.store(out_ptr + offs, zero, mask=m)


class ModelNew(nn.Module):
    def forward(self, a, b):
        out = torch.empty_like(a)
        zero_kernel[(triton.cdiv(a.numel(), 1024),)](a, b, out, a.numel(), BLOCK=1024)
        return out
