import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def partial_sums_kernel(x_ptr, partial_ptr, n_elements, BLOCK_SIZE: tl.constexpr, ITERS: tl.constexpr):
    # Each program sums ITERS consecutive blocks into a register vector, then writes one fp32 partial sum.
    base = tl.program_id(0) * BLOCK_SIZE * ITERS
    acc = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for i in range(ITERS):
        offs = base + i * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
        acc += tl.load(x_ptr + offs, mask=offs < n_elements, other=0.0)
    tl.store(partial_ptr + tl.program_id(0), tl.sum(acc, axis=0))


@triton.jit
def final_sum_kernel(partial_ptr, out_ptr, n_partials, BLOCK_SIZE: tl.constexpr):
    # A single program folds the partial sums: deterministic, unlike atomics.
    acc = tl.zeros((BLOCK_SIZE,), dtype=tl.float32)
    for start in range(0, n_partials, BLOCK_SIZE):
        offs = start + tl.arange(0, BLOCK_SIZE)
        acc += tl.load(partial_ptr + offs, mask=offs < n_partials, other=0.0)
    tl.store(out_ptr, tl.sum(acc, axis=0))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.contiguous().view(-1)
        n = flat.numel()
        BLOCK_SIZE = 2048
        ITERS = 8
        n_partials = triton.cdiv(n, BLOCK_SIZE * ITERS)
        partials = torch.empty(n_partials, device=x.device, dtype=torch.float32)
        out = torch.empty((), device=x.device, dtype=x.dtype)
        partial_sums_kernel[(n_partials,)](flat, partials, n, BLOCK_SIZE=BLOCK_SIZE, ITERS=ITERS, num_warps=8)
        final_sum_kernel[(1,)](partials, out, n_partials, BLOCK_SIZE=triton.next_power_of_2(min(n_partials, 1024)))
        return out
