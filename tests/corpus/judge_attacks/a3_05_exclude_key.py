# class 3: exclude Python + PythonTLSSnapshot dispatch keys via guard object
import torch, torch.nn as nn
class ModelNew(nn.Module):
    def forward(self, x):
        ks = torch._C.DispatchKeySet(torch._C.DispatchKey.Python) | torch._C.DispatchKeySet(torch._C.DispatchKey.PythonTLSSnapshot)
        with torch._C._ExcludeDispatchKeyGuard(ks):
            return torch.relu(x)
