"""Dynamic Tanh (DyT): tanh(alpha * x) * gamma + beta, a normalisation-free LayerNorm replacement."""
import torch
import torch.nn as nn

HIDDEN = 256


class Model(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((1,), 0.7))
        self.gamma = nn.Parameter(torch.randn(hidden))
        self.beta = nn.Parameter(torch.randn(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.alpha * x) * self.gamma + self.beta


def get_inputs():
    return [torch.randn(8, HIDDEN)]


def get_init_inputs():
    return [HIDDEN]
