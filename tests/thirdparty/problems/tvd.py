"""Total variation distance, elementwise: 0.5 * |p - q|."""
import torch
import torch.nn as nn

ROWS = 8
VOCAB = 500


class Model(nn.Module):
    def forward(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.abs(p - q)


def get_inputs():
    return [torch.rand(ROWS, VOCAB), torch.rand(ROWS, VOCAB)]


def get_init_inputs():
    return []
