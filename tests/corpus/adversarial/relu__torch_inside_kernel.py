"""Interpreter-only cheat: the @triton.jit body calls torch on module-level tensors. Under TRITON_INTERPRET=1 the
kernel body runs as plain Python, so torch.relu really executes (it would not compile for a GPU). The static policy
never looks inside @triton.jit bodies (by design), so the runtime torch-op guard, active during launches, must catch it.
"""
import torch
import torch.nn as nn
import triton
import triton.language as tl

_STASH = {}


@triton.jit
def relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    _STASH["out"].copy_(torch.relu(_STASH["x"]))


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        _STASH["x"], _STASH["out"] = x, out
        relu_kernel[(1,)](x, out, x.numel(), BLOCK=1024)
        return out
