"""Ours: wraps liger-kernel's SwiGLU forward kernel; the launch mirrors liger's swiglu_forward."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, a, b):
        ori_shape = a.shape
        n_cols = ori_shape[-1]
        a = a.view(-1, n_cols)
        b = b.view(-1, n_cols)
        c = torch.empty_like(a)
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        _swiglu_forward_kernel[(a.shape[0],)](a, b, c, c.stride(-2), 1.0, n_cols=n_cols, BLOCK_SIZE=BLOCK_SIZE,
                                              num_warps=num_warps)
        return c.view(*ori_shape)
