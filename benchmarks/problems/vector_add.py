"""Elementwise addition of two large fp32 vectors: out = a + b (memory-bound: 2 reads and 1 write per element)."""
import torch
import torch.nn as nn

N = 64 * 1024 * 1024


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def get_inputs():
    return [torch.randn(N), torch.randn(N)]


def get_init_inputs():
    return []
