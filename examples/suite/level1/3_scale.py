"""Multiply every element by a scalar given at construction."""

import torch
import torch.nn as nn

rows = 16
cols = 64
factor = 2.5


class Model(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return [factor]
