"""Leaky ReLU with a slope given at construction."""

import torch
import torch.nn as nn

rows = 16
cols = 64
negative_slope = 0.01


class Model(nn.Module):
    def __init__(self, negative_slope):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return torch.nn.functional.leaky_relu(x, self.negative_slope)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return [negative_slope]
