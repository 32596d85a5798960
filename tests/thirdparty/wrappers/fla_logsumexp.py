"""Ours: wraps flash-linear-attention's logsumexp_fwd_kernel; exp/log are fla.ops.utils.op's default
(non-fast-ops) definitions, and the launch mirrors logsumexp_fwd."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

autotune_cache_kwargs = {}


@triton.jit
def exp(x):
    return tl.exp(x.to(tl.float32))


@triton.jit
def log(x):
    return tl.log(x.to(tl.float32))


# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x):
        N, D = x.shape
        B = min(triton.next_power_of_2(D), 64 * 1024)
        ND = triton.cdiv(D, B)
        z = x.new_empty(N, ND, dtype=torch.float)
        logsumexp_fwd_kernel[(N, ND)](x, z, 0.5, D=D, B=B, HAS_SCALE=True)
        out = torch.empty(N, dtype=torch.float, device=x.device)
        logsumexp_fwd_kernel[(N, 1)](z, out, 1.0, D=ND, B=triton.next_power_of_2(ND), HAS_SCALE=False)
        return out
