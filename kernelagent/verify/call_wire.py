"""How one kernel_function call crosses from the test process to the kernel process (test mode).

Arguments travel as JSON values, with tensors as shared memory the test process owns: a memfd on the CPU, a CUDA IPC
handle on the GPU. Neither needs unpickling on the kernel side, where the runtime guard refuses `pickle.find_class`
(a torch.dtype argument would otherwise be refused): dtypes and devices are spelled out and resolved from references
bound before the candidate's module was imported; tensors go through the judge's own lender (wire.SharedTensors).
Only values with no JSON spelling are pickled, as a last resort. Nothing here reads what the kernel process sends.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from kernelagent.verify import wire


class Lender:
    """The test process's side of one call: shared copies of the arguments, and buffers for the result."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.shared = wire.SharedTensors()  # the judge's lender: memfds on CPU, CUDA IPC handles as JSON on the GPU
        self.cuda = False  # whether a lent tensor lives on the GPU (then synchronise before the kernel reads it)
        self.fds: list[int] = []

    def allocate(self, shape: list[int], dtype: Any, device: Any) -> tuple[Any, dict]:
        buffer, descriptor, fds = self.shared.allocate(shape, dtype, device)
        self.cuda = self.cuda or descriptor["kind"] == "cuda"
        self.fds += fds
        return buffer, descriptor

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.shared.close()
        self.cuda = False


def encode(value: object, lender: Lender, pairs: list) -> dict:
    """A JSON node for value; each tensor is lent as a shared copy and (original, copy) appended to pairs."""
    torch = lender.torch
    if isinstance(value, torch.Tensor):
        shared, descriptor = lender.allocate(list(value.shape), value.dtype, value.device)
        shared.copy_(value.detach())
        pairs.append((value, shared))
        return {"tensor": descriptor}
    if value is None or type(value) in (bool, int, float, str):
        return {"v": value}
    if type(value) is bytes:
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, torch.Size):
        return {"size": [int(d) for d in value]}
    if type(value) in (list, tuple):
        return {type(value).__name__: [encode(item, lender, pairs) for item in value]}
    if type(value) is dict and all(type(k) is str for k in value):
        return {"dict": [[k, encode(v, lender, pairs)] for k, v in value.items()]}
    return {"pickle": wire.pack_object(value)}


class Decoder:
    """The kernel process's side: built before the candidate's module is imported, so that what it resolves
    (torch classes, the CUDA rebuild function) cannot have been replaced by then."""

    def __init__(self) -> None:
        import torch
        from torch.multiprocessing.reductions import rebuild_cuda_tensor

        self.torch = torch
        self._rebuild_cuda = rebuild_cuda_tensor
        self._map = wire.map_tensor
        self._unpack = wire.unpack_object
        self._dtypes = {str(v).removeprefix("torch."): v for v in vars(torch).values() if isinstance(v, torch.dtype)}

    def tensor(self, descriptor: dict, fds: list[int], keep: list) -> Any:
        return self._map(descriptor, fds, keep, self._rebuild_cuda)

    def value(self, node: dict, fds: list[int], keep: list) -> Any:  # noqa: PLR0911 - one kind per line
        if "tensor" in node:
            return self.tensor(node["tensor"], fds, keep)
        if "v" in node:
            return node["v"]
        if "list" in node:
            return [self.value(item, fds, keep) for item in node["list"]]
        if "tuple" in node:
            return tuple(self.value(item, fds, keep) for item in node["tuple"])
        if "dict" in node:
            return {key: self.value(item, fds, keep) for key, item in node["dict"]}
        if "dtype" in node:
            return self._dtypes[node["dtype"]]
        if "device" in node:
            return self.torch.device(node["device"])
        if "size" in node:
            return self.torch.Size(node["size"])
        if "bytes" in node:
            return base64.b64decode(node["bytes"])
        return self._unpack(node["pickle"])
