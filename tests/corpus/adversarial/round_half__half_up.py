"""Wrong only at exact halves: floor(y + 0.5) takes 2.5 to 3 where torch.round gives 2 (halves to even). Random
inputs are never exact halves, so it matched every draw until the judge drew inputs on a grid of halves."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def round_half_up(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    y = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, tl.floor(y + 0.5), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        round_half_up[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
