from __future__ import annotations

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.heuristics({"EVEN_N": lambda args: args["n_cols"] % args["BLOCK_N"] == 0})
@triton.jit
def add_rows_kernel(a_ptr, b_ptr, out_ptr, n_cols, stride_row, BLOCK_N: tl.constexpr, EVEN_N: tl.constexpr):
    # One program per (row, column block); 2D indexing with explicit row stride.
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    base = row * stride_row
    if EVEN_N:
        a = tl.load(a_ptr + base + cols)
        b = tl.load(b_ptr + base + cols)
        tl.store(out_ptr + base + cols, a + b)
    else:
        mask = cols < n_cols
        a = tl.load(a_ptr + base + cols, mask=mask, other=0.0)
        b = tl.load(b_ptr + base + cols, mask=mask, other=0.0)
        tl.store(out_ptr + base + cols, a + b, mask=mask)


def _launch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a2 = a.reshape(-1, a.shape[-1]).contiguous()
    b2 = b.reshape(-1, b.shape[-1]).contiguous()
    out = torch.empty_like(a2)
    n_rows, n_cols = a2.shape
    block_n = min(128, triton.next_power_of_2(n_cols))
    grid = (n_rows, triton.cdiv(n_cols, block_n))
    add_rows_kernel[grid](a2, b2, out, n_cols, a2.stride(0), BLOCK_N=block_n)
    return out.view(a.shape)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, a, b):
        return _launch(a, b)
