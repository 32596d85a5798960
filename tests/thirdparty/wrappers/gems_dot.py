"""Ours: wraps flag-gems' single-block dot product; the launch mirrors flag_gems.ops.dot.dot. flag-gems' launch glue
(`@libentry()`, the `tle.` alias) is taken out as the kernels are copied (build.ADAPT); `program_id` is flag-gems' own."""
import math
import torch
import torch.nn as nn
import triton
import triton.language as tl


# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x, y):
        N = x.shape[0]
        out = torch.empty([], dtype=torch.float32, device=x.device)
        dot_kernel[(1, 1, 1)](x, y, out, N, triton.next_power_of_2(N))
        return out
