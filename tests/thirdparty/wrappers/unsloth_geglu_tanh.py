"""Ours: wraps unsloth's _approx_forward_kernel; the launch mirrors unsloth's host function for it."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

from triton.language.extra import libdevice

triton_tanh = libdevice.tanh  # unsloth.kernels.utils picks this on CUDA with Triton >= 3
BLOCK_SIZE = 1024

# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, e, g):
        n_elements = e.numel()
        h = torch.empty_like(e)
        grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)  # noqa: E731
        _approx_forward_kernel[grid](e, g, h, n_elements, BLOCK_SIZE=BLOCK_SIZE, LONG_INDEXING=0)
        return h
