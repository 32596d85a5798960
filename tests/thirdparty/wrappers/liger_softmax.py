"""Ours: wraps liger-kernel's single-block softmax forward kernel; the launch mirrors _softmax_forward."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x):
        n_cols = x.shape[-1]
        x2d = x.contiguous().view(-1, n_cols)
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        y2d = torch.empty_like(x2d)
        _softmax_single_block_forward_kernel[(x2d.shape[0],)](y2d, y2d.stride(0), x2d, x2d.stride(0), n_cols,
                                                              BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps)
        return y2d.view(x.shape)
