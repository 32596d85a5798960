"""Ours: wraps liger-kernel's GroupNorm forward kernel; the launch mirrors group_norm_forward."""
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
    def __init__(self, channels, groups):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = x.shape
        batch_size, num_channels = shape[0], shape[1]
        X = x.reshape(batch_size, self.groups, -1).contiguous()
        hidden_size = X.shape[-1]
        BLOCK_SIZE = min(65536, triton.next_power_of_2(hidden_size))
        Y = torch.empty((batch_size, self.groups, hidden_size), dtype=X.dtype, device=X.device)
        Mean = torch.zeros((batch_size, self.groups), dtype=X.dtype, device=X.device)
        RSTD = torch.zeros((batch_size, self.groups), dtype=X.dtype, device=X.device)
        _group_norm_forward_kernel[(batch_size, self.groups)](
            Y, Y.stride(0), Y.stride(1), X, X.stride(0), X.stride(1), Mean, Mean.stride(0), Mean.stride(1), RSTD,
            RSTD.stride(0), RSTD.stride(1), self.weight, self.bias, hidden_size, num_channels // self.groups, 1e-5,
            BLOCK_SIZE=BLOCK_SIZE)
        return Y.view(*shape)
