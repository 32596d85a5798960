import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def round_to_even(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    y = tl.load(x_ptr + offs, mask=mask)
    low = tl.floor(y)
    frac = y - low
    low_is_even = (low - 2.0 * tl.floor(low * 0.5)) == 0.0
    up = (frac > 0.5) | ((frac == 0.5) & (~low_is_even))
    tl.store(out_ptr + offs, tl.where(up, low + 1.0, low), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        round_to_even[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
