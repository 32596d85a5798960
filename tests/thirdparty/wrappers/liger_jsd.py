"""Ours: wraps liger-kernel's generalised JSD kernel (beta 0.5, no labels); it writes the per-element loss, already
divided by the number of rows, and dX (unused here). The launch mirrors liger's triton jsd impl."""
import torch
import torch.nn as nn
import triton
import triton.language as tl

# --- published definitions ---
class ModelNew(nn.Module):
    def forward(self, x, y):
        BT, V = x.shape
        BLOCK_SIZE = min(65536, triton.next_power_of_2(V))
        loss = torch.zeros((BT, V), dtype=torch.float32, device=x.device)
        dX = torch.empty_like(x)
        _jsd_kernel[(BT,)](x, x.stride(0), y, y.stride(0), loss, loss.stride(0), dX, dX.stride(0), x, 0.5, BT, -100,
                           V, BLOCK_SIZE=BLOCK_SIZE, HAS_LABEL=False)
        return loss
