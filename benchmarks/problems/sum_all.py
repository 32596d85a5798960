"""Sum of all elements of a large 1D fp32 tensor, returned as a 0-dimensional tensor (one read per element)."""
import torch
import torch.nn as nn

N = 64 * 1024 * 1024


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x)


def get_inputs():
    return [torch.randn(N)]


def get_init_inputs():
    return []
