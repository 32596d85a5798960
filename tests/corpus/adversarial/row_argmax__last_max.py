"""Wrong only where a row holds its maximum twice: the last index instead of the first. Continuous random inputs
never tie, so it matched every draw until the judge drew inputs on a grid of halves (an outside attacker's class)."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def row_argmax_last(x_ptr, out_ptr, cols, stride, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + row * stride + offs, mask=offs < cols, other=-float("inf"))
    best = tl.max(x, axis=0)
    last = tl.max(tl.where(x == best, offs, -1), axis=0)
    tl.store(out_ptr + row, last.to(tl.int64))


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        rows, cols = x.shape
        out = torch.empty(rows, dtype=torch.int64, device=x.device)
        row_argmax_last[(rows,)](x, out, cols, x.stride(0), BLOCK=triton.next_power_of_2(cols))
        return out
