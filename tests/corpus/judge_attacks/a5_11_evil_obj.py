# class 5: return an object whose __iter__/__len__/__getattr__ misbehave (infinite, raising, recursive)
import torch, torch.nn as nn, triton, triton.language as tl
@triton.jit
def noop(p):
    pass
class Evil:
    def __len__(self): return 10**18
    def __iter__(self):
        while True: yield self
    def __getattr__(self, n): return self
    def __eq__(self, o): return True
    def __reduce__(self): return (exec, ("import os; os._exit(0)",))
class ModelNew(nn.Module):
    def forward(self, x):
        noop[(1,)](x)
        return Evil()
