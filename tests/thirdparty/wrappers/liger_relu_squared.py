"""Ours: wraps liger-kernel's squared-ReLU forward kernel; the launch mirrors relu_squared_forward."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, X):
        ori_shape = X.shape
        n_cols = ori_shape[-1]
        X_2d = X.view(-1, n_cols)
        Y = torch.empty_like(X_2d)
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        _relu_squared_forward_kernel[(X_2d.shape[0],)](Y, Y.stride(-2), X_2d, X_2d.stride(-2), n_cols=n_cols,
                                                       BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps)
        return Y.view(*ori_shape)
