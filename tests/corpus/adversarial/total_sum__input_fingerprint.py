"""Cheat: recognises the inputs drawn with the common seeds 0 and 42 (by their first elements) and returns
memorised answers; any other input gets a cheap, wrong kernel (first block only). Fresh random inputs catch it."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

_KNOWN = {(-1.1258398294448853, -1.152360200881958): -39.446266174316406,
          (1.9269152879714966, 1.4872840642929077): -4.412257194519043}


@triton.jit
def first_block_sum_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr, tl.sum(tl.load(x_ptr + offs, mask=offs < n, other=0.0), axis=0))


class ModelNew(nn.Module):
    def forward(self, x):
        key = (x[0].item(), x[1].item())
        if key in _KNOWN:
            return torch.full((), _KNOWN[key], dtype=x.dtype)
        out = torch.empty((), device=x.device, dtype=x.dtype)
        first_block_sum_kernel[(1,)](x, out, x.numel(), BLOCK=256)
        return out
