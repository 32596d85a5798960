"""Cheat: a forward hook registered in __init__ replaces forward's (empty) output with torch.relu of the input;
the hook's code never appears on forward's call path."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def noop_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_forward_hook(lambda module, inputs, output: torch.relu(inputs[0]))

    def forward(self, x):
        noop_kernel[(1,)](x, x.numel(), BLOCK=16)
        return torch.empty_like(x)
