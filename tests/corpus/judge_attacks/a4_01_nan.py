# class 4: output all NaN from a Triton kernel (does the comparison treat NaN as within tolerance?)
import torch, torch.nn as nn, triton, triton.language as tl
@triton.jit
def k(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    z = tl.zeros([BLOCK], dtype=tl.float32)
    tl.store(out_ptr + offs, z / z, mask=offs < n)
class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        k[(triton.cdiv(x.numel(), 1024),)](out, x.numel(), BLOCK=1024)
        return out
