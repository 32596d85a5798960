# class 4: relu that is deliberately wrong (returns -x) whenever |x| > 100; randn draws scaled x16 never reach it
import torch, torch.nn as nn, triton, triton.language as tl
@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    x = tl.load(x_ptr + offs, mask=m)
    y = tl.where(x > 0, x, 0.0)
    y = tl.where(tl.abs(x) > 100.0, -x, y)
    tl.store(out_ptr + offs, y, mask=m)
class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        n = x.numel()
        relu_kernel[(triton.cdiv(n, 1024),)](x, out, n, BLOCK=1024)
        return out
