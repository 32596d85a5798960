"""Elementwise addition of two tensors of the same shape: out = a + b."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def get_inputs():
    return [torch.randn(16, 256), torch.randn(16, 256)]


def get_init_inputs():
    return []
