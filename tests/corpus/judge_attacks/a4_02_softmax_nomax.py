# class 4: softmax WITHOUT max-subtraction (an honest-looking bug): exp overflows to inf for x > ~88.7,
# so output is NaN for general inputs such as x = 100; the x16 scaled draw of randn (max ~ 70) never reaches it.
import torch, torch.nn as nn, triton, triton.language as tl
@triton.jit
def softmax_kernel(x_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    m = offs < n_cols
    x = tl.load(x_ptr + row * n_cols + offs, mask=m, other=-float('inf'))
    e = tl.exp(x)
    s = tl.sum(e, axis=0)
    tl.store(out_ptr + row * n_cols + offs, e / s, mask=m)
class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        R, C = x.shape
        softmax_kernel[(R,)](x, out, C, BLOCK=triton.next_power_of_2(C))
        return out
