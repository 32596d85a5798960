"""Ours: wraps flag-gems' two-stage full min; the launch mirrors flag_gems.ops.min.min. flag-gems' launch glue
(`@libentry()`, the `tle.` alias) is taken out as the kernels are copied (build.ADAPT); `program_id` is flag-gems' own."""
import math
import torch
import torch.nn as nn
import triton
import triton.language as tl


# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x):
        inp = x.contiguous()
        M = inp.numel()
        block_size = triton.next_power_of_2(math.ceil(math.sqrt(M)))
        mid_size = triton.cdiv(M, block_size)
        block_mid = triton.next_power_of_2(mid_size)
        mid = torch.empty((mid_size,), dtype=inp.dtype, device=inp.device)
        out = torch.empty([], dtype=inp.dtype, device=inp.device)
        min_kernel_1[(mid_size, 1, 1)](inp, mid, M, block_size)
        min_kernel_2[(1, 1, 1)](mid, out, mid_size, block_mid)
        return out
