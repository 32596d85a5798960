"""Ours: wraps liger-kernel's autotuned DyT forward kernel; the launch mirrors liger_dyt_fwd."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

try:
    from triton.language.extra.libdevice import tanh
except ModuleNotFoundError:
    from triton.language.extra.cuda.libdevice import tanh

# --- published definitions ---
class ModelNew(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))
        self.gamma = nn.Parameter(torch.ones(hidden))
        self.beta = nn.Parameter(torch.zeros(hidden))

    def forward(self, x):
        N = x.shape[-1]
        x2 = x.reshape(-1, N)
        y = torch.empty_like(x2)
        grid = lambda meta: (triton.cdiv(N, meta["BLOCK_N"]), x2.shape[0])  # noqa: E731
        _dyt_fwd_kernel[grid](x2, y, self.alpha, self.gamma, self.beta, HAVE_BETA=True, N=N)
        return y.view(x.shape)
