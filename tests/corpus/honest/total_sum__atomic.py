import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def partial_sum_kernel(x_ptr, acc_ptr, n_elements, BLOCK: tl.constexpr):
    # Each program reduces one block and atomically adds it into a single fp32 accumulator.
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n_elements, other=0.0)
    tl.atomic_add(acc_ptr, tl.sum(x, axis=0))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous().view(-1)
        acc = torch.zeros(1, device=x.device, dtype=torch.float32)
        n = x.numel()
        BLOCK = 1024
        partial_sum_kernel[(triton.cdiv(n, BLOCK),)](x, acc, n, BLOCK=BLOCK)
        return acc.reshape(())
