"""PolyNorm: w0*norm(x^3) + w1*norm(x^2) + w2*norm(x) + b, norm(u) = u / sqrt(mean(u^2) + eps), eps 1e-6."""
import torch
import torch.nn as nn

ROWS = 8
HIDDEN = 384


def _norm(u):
    return u * torch.rsqrt(u.pow(2).mean(-1, keepdim=True) + 1e-6)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor([0.5, -0.7, 1.2]))
        self.bias = nn.Parameter(torch.tensor([0.3]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        return w[0] * _norm(x ** 3) + w[1] * _norm(x ** 2) + w[2] * _norm(x) + self.bias


def get_inputs():
    return [torch.randn(ROWS, HIDDEN)]


def get_init_inputs():
    return []
