"""Ours: wraps unsloth's Gemma RMSNorm forward kernel; the launch mirrors unsloth.kernels.rms_layernorm's forward
(calculate_settings as in unsloth.kernels.utils, with its MAX_FUSED_SIZE)."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

MAX_FUSED_SIZE = 65536
next_power_of_2 = triton.next_power_of_2


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
        r = torch.empty(n_rows, dtype=torch.float32, device=X.device)
        _gemma_rms_layernorm_forward[(n_rows,)](Y, X, self.weight, r, Y.stride(0), X.stride(0), self.weight.stride(0), r.stride(0), n_cols, 1e-6,
                      False, BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps)
        return Y.view(*shape)
