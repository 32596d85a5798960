"""Product of every element (values near 1)."""
import torch
import torch.nn as nn

ROWS = 4
COLS = 50


class Model(nn.Module):
    def forward(self, x):
        return torch.prod(x)


def get_inputs():
    return [torch.rand(ROWS, COLS) * 0.2 + 0.9]


def get_init_inputs():
    return []
