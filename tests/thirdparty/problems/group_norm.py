"""GroupNorm with per-channel weight and bias, eps 1e-5."""
import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 2
CHANNELS = 8
GROUPS = 4
SPATIAL = 96


class Model(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.groups = groups
        self.weight = nn.Parameter(torch.randn(channels))
        self.bias = nn.Parameter(torch.randn(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x, self.groups, self.weight, self.bias, 1e-5)


def get_inputs():
    return [torch.randn(BATCH, CHANNELS, SPATIAL)]


def get_init_inputs():
    return [CHANNELS, GROUPS]
