"""Ours: wraps flag-gems' RMSNorm forward kernel; the launch mirrors flag_gems.ops.rms_norm.rms_norm_forward. flag-gems' launch glue
(`@libentry()`, the `tle.` alias) is taken out as the kernels are copied (build.ADAPT); `program_id` is flag-gems' own."""
import math
import torch
import torch.nn as nn
import triton
import triton.language as tl


# --- published definitions ---
class ModelNew(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))

    def forward(self, x):
        N = x.shape[-1]
        M = x.numel() // N
        x = x.contiguous()
        y = torch.empty_like(x)
        inv_rms = torch.empty((M,), device=x.device, dtype=torch.float32)
        rms_norm_kernel[M,](y, inv_rms, x, self.weight, N, 1, N, 1, N, 1e-6, triton.next_power_of_2(N))
        return y
