"""SwiGLU gate: silu(a) * b over the last dimension."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.silu(a) * b


def get_inputs():
    return [torch.randn(2, 16, 384), torch.randn(2, 16, 384)]


def get_init_inputs():
    return []
