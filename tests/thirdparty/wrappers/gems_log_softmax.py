"""Ours: wraps flag-gems' log-softmax kernel; the launch mirrors flag_gems.ops.log_softmax.log_softmax. flag-gems' launch glue
(`@libentry()`, the `tle.` alias) is taken out as the kernels are copied (build.ADAPT); `program_id` is flag-gems' own."""
import math
import torch
import torch.nn as nn
import triton
import triton.language as tl


# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x):
        N = x.shape[-1]
        M = x.numel() // N
        inp = x.contiguous()
        out = torch.empty_like(inp)
        grid = lambda meta: (triton.cdiv(M, meta["BLOCK_M"]), 1)  # noqa: E731
        log_softmax_kernel[grid](out, inp, M, N, 1, num_warps=8)
        return out
