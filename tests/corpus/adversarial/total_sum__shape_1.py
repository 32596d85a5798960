"""Wrong shape: the total is returned with shape [1] instead of a 0-d tensor."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def sum_kernel(x_ptr, acc_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.atomic_add(acc_ptr, tl.sum(tl.load(x_ptr + offs, mask=offs < n, other=0.0), axis=0))


class ModelNew(nn.Module):
    def forward(self, x):
        acc = torch.zeros(1, device=x.device, dtype=torch.float32)
        sum_kernel[(triton.cdiv(x.numel(), 1024),)](x, acc, x.numel(), BLOCK=1024)
        return acc
