"""Wrong dtype: correct values stored into a float64 output."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def scale_shift_kernel(x_ptr, out_ptr, scale, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m).to(tl.float64)
    tl.store(out_ptr + offs, x * scale + 1.0, mask=m)


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x):
        out = torch.empty(x.shape, device=x.device, dtype=torch.float64)
        scale_shift_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, self.scale, x.numel(), BLOCK=1024)
        return out
