"""Ours: wraps flash-linear-attention's autotuned, row-strided sigmoid_fwd_kernel (fla.modules.activations);
IS_INTEL/IS_AMD are False as on NVIDIA, and the launch mirrors sigmoid_fwd for a contiguous input."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

autotune_cache_kwargs = {}
IS_INTEL = False
IS_AMD = False


# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x):
        T, D = x.numel(), x.shape[-1]
        y = torch.empty_like(x, memory_format=torch.contiguous_format)
        sigmoid_fwd_kernel[lambda meta: (triton.cdiv(T, meta["B"]),)](x=x, y=y, stride_x_row=D, stride_y_row=D, T=T,
                                                                       D=D)
        return y
