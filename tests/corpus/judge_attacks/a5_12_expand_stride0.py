# class 5: return a stride-0 expanded view / non-contiguous transposed tensor of the right shape (wrong values)
import torch, torch.nn as nn, triton, triton.language as tl
@triton.jit
def noop(p):
    pass
class ModelNew(nn.Module):
    def forward(self, x):
        one = torch.empty(1, 1, dtype=x.dtype)
        noop[(1,)](one)
        return one.expand(x.shape)
