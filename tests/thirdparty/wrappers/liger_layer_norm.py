"""Ours: wraps liger-kernel's LayerNorm forward kernel; the launch mirrors layer_norm_forward."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

try:
    from triton.language.extra.libdevice import rsqrt
except ModuleNotFoundError:
    from triton.language.extra.cuda.libdevice import rsqrt

# --- published definitions ---
class ModelNew(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden))
        self.bias = nn.Parameter(torch.zeros(hidden))

    def forward(self, x):
        shape = x.shape
        X = x.view(-1, shape[-1])
        n_rows, n_cols = X.shape
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        Y = torch.empty((n_rows, n_cols), dtype=X.dtype, device=X.device)
        Mean = torch.empty(n_rows, dtype=torch.float32, device=X.device)
        RSTD = torch.empty(n_rows, dtype=torch.float32, device=X.device)
        W, B = self.weight, self.bias
        _layer_norm_forward_kernel[(n_rows,)](Y, Y.stride(0), X, X.stride(0), W, W.stride(0), B, B.stride(0), Mean,
                                              Mean.stride(0), RSTD, RSTD.stride(0), n_cols, 1e-5,
                                              BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps)
        return Y.view(*shape)
