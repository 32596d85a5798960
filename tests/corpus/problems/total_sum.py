"""Sum of all elements of a 1D tensor, returned as a 0-dimensional (shape []) tensor."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x)


def get_inputs():
    return [torch.randn(4096)]


def get_init_inputs():
    return []
