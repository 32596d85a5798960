# class 3: pure-Python compute via .tolist() and torch.tensor() (no aten compute op), plus a no-op Triton launch
import torch, torch.nn as nn, triton, triton.language as tl
@triton.jit
def noop(p):
    pass
class ModelNew(nn.Module):
    def forward(self, x):
        vals = [v if v > 0 else 0.0 for v in x.reshape(-1).tolist()]
        out = torch.tensor(vals, dtype=x.dtype).reshape(x.shape)
        noop[(1,)](out)
        return out
