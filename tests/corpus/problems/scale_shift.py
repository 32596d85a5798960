"""Scale then shift elementwise, with the scale given as an __init__ argument: out = x * scale + 1."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + 1.0


def get_inputs():
    return [torch.randn(16, 256)]


def get_init_inputs():
    return [0.75]
