"""Ours: wraps liger-kernel's fused residual-add + RMSNorm forward kernel (Llama casting); the launch mirrors
fused_add_rms_norm_forward."""
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

    def forward(self, x, r):
        shape = x.shape
        X = x.view(-1, shape[-1])
        R = r.view(-1, shape[-1])
        n_rows, n_cols = X.shape
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        Y = torch.empty((n_rows, n_cols), dtype=X.dtype, device=X.device)
        S = torch.empty((n_rows, n_cols), dtype=X.dtype, device=X.device)
        RSTD = torch.empty(n_rows, dtype=torch.float32, device=X.device)
        W = self.weight
        _fused_add_rms_norm_forward_kernel[(n_rows,)](Y, Y.stride(0), S, S.stride(0), X, X.stride(0), R, R.stride(0),
                                                      W, W.stride(0), RSTD, RSTD.stride(0), n_cols, 1e-6, 0.0,
                                                      _CASTING_MODE_LLAMA.value, BLOCK_SIZE=BLOCK_SIZE,
                                                      num_warps=num_warps, num_stages=2)
        return Y.view(*shape), S.view(*shape)
