"""Wrong when the row count is 2 (mod 4): four rows per program, and a grid of (rows + 1) // 4 + rows % 2 programs,
which covers every row count the spec and the 1.5x shape give (64, 97) but leaves 2 rows unwritten at 2 (mod 4)."""
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def softmax_four_rows(x_ptr, out_ptr, rows, cols, stride, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    for r in range(4):
        row = tl.program_id(0) * 4 + r
        mask = (offs < cols) & (offs * 0 + row < rows)
        x = tl.load(x_ptr + row * stride + offs, mask=mask, other=float("-inf"))
        x = x - tl.max(x, axis=0)
        e = tl.where(mask, tl.exp(x), 0.0)
        tl.store(out_ptr + row * stride + offs, e / tl.sum(e, axis=0), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        out = torch.empty_like(x)
        rows, cols = x.shape
        grid = ((rows + 1) // 4 + rows % 2,)
        softmax_four_rows[grid](x, out, rows, cols, x.stride(0), BLOCK=triton.next_power_of_2(cols))
        return out
