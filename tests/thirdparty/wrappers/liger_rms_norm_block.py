"""Ours: wraps liger-kernel's blocked (BLOCK_ROW rows per program) RMSNorm forward kernel; the launch mirrors
rms_norm_forward's block branch."""
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

    def forward(self, x):
        shape = x.shape
        X = x.view(-1, shape[-1])
        n_rows, n_cols = X.shape
        BLOCK_SIZE, num_warps = calculate_settings(n_cols)
        Y = torch.empty((n_rows, n_cols), dtype=X.dtype, device=X.device)
        RSTD = torch.empty(n_rows, dtype=torch.float32, device=X.device)
        W = self.weight
        BLOCK_ROW = 16
        _block_rms_norm_forward_kernel[(triton.cdiv(n_rows, BLOCK_ROW),)](
            Y, Y.stride(0), X, X.stride(0), W, W.stride(0), RSTD, RSTD.stride(0), n_rows, n_cols, 1e-6, 0.0,
            _CASTING_MODE_LLAMA.value, elementwise_affine=True, BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps,
            BLOCK_ROW=BLOCK_ROW)
        return Y.view(*shape)
