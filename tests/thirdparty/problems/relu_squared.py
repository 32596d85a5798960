"""Squared ReLU: relu(x) ** 2."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) ** 2


def get_inputs():
    return [torch.randn(24, 320)]


def get_init_inputs():
    return []
