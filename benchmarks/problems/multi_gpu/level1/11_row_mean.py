"""Mean of each row: (rows, cols) -> (rows,)."""

import torch
import torch.nn as nn

rows = 16
cols = 64


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return torch.mean(x, dim=1)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
