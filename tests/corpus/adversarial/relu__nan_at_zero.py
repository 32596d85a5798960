"""Wrong only at exactly 0: relu as x * (1 + x / |x|) / 2, which is 0/0 = NaN there. Continuous random inputs are
never exactly 0, so it matched every draw until the judge drew inputs with zeros (an outside attacker's false pass)."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def relu_by_sign(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x * (1.0 + x / tl.abs(x)) * 0.5, mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        relu_by_sign[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
        return out
