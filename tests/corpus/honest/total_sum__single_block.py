import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def total_sum_kernel(x_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    # Single program: accumulate BLOCK-wide partial sums in a loop, then reduce once.
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for start in range(0, n_elements, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        acc += tl.load(x_ptr + offs, mask=offs < n_elements, other=0.0)
    tl.store(out_ptr, tl.sum(acc, axis=0))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        flat = x.reshape(-1)
        out = torch.empty((), device=x.device, dtype=x.dtype)
        total_sum_kernel[(1,)](flat, out, flat.numel(), BLOCK=512)
        return out
