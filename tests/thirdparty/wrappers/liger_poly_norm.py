"""Ours: wraps liger-kernel's PolyNorm forward kernel; the launch mirrors poly_norm_forward."""
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
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        shape = x.shape
        X = x.view(-1, shape[-1])
        n_rows, n_cols = X.shape
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        Y = torch.empty((n_rows, n_cols), dtype=X.dtype, device=X.device)
        RSTD = torch.empty((n_rows, 3), dtype=torch.float32, device=X.device)
        _poly_norm_forward_kernel[(n_rows,)](Y, Y.stride(0), X, X.stride(0), self.weight, self.bias, RSTD,
                                             RSTD.stride(0), n_cols, 1e-6, BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps)
        return Y.view(*shape)
