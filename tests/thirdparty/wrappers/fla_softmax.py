"""Ours: wraps flash-linear-attention's autotuned softmax_fwd_kernel; exp is fla.ops.utils.op's default
(non-fast-ops) definition, NUM_WARPS_AUTOTUNE its NVIDIA list, and the launch mirrors softmax_fwd."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

autotune_cache_kwargs = {}
NUM_WARPS_AUTOTUNE = [1, 2, 4, 8, 16, 32]


@triton.jit
def exp(x):
    return tl.exp(x.to(tl.float32))


# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x):
        shape = x.shape
        x = x.view(-1, x.shape[-1])
        N, D = x.shape
        p = torch.empty_like(x, dtype=torch.float)
        softmax_fwd_kernel[(N,)](x=x, p=p, D=D, B=triton.next_power_of_2(D))
        return p.view(*shape)
