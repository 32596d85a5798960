"""How one kernel_function call crosses from the test process to the kernel process (test mode).

Arguments travel as JSON values, with tensors as shared memory the test process owns: a memfd on the CPU, a CUDA IPC
handle on the GPU. Neither needs unpickling on the kernel side, where the runtime guard refuses `pickle.find_class`
(a torch.dtype argument or a CUDA handle's classes would otherwise be refused): dtypes, devices and the few classes a
CUDA handle names are spelled out and resolved from references bound before the candidate's module was imported.
Only values with no JSON spelling are pickled, as a last resort. Nothing here reads what the kernel process sends.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from kernelagent.verify import wire

# The classes a CUDA IPC handle names (torch.multiprocessing.reductions.reduce_tensor); nothing else is resolved.
_IPC_CLASSES = ("torch.Tensor", "torch.nn.parameter.Parameter", "torch.storage.TypedStorage", "torch.UntypedStorage")


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Lender:
    """The test process's side of one call: shared copies of the arguments, and buffers for the result."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.cpu = wire.SharedTensors()
        self.cuda: list = []  # kept alive until the kernel process has copied its result
        self.fds: list[int] = []

    def allocate(self, shape: list[int], dtype: Any, device: Any) -> tuple[Any, dict]:
        torch = self.torch
        if torch.device(device).type == "cuda":
            buffer = torch.empty(shape, dtype=dtype, device=device)
            from torch.multiprocessing.reductions import reduce_tensor

            self.cuda.append(buffer)
            _rebuild, args = reduce_tensor(buffer)
            descriptor = {"kind": "cuda", "shape": list(shape), "dtype": str(dtype).removeprefix("torch.")}
            return buffer, descriptor | {"handle": encode(list(args), self, [])}
        buffer, descriptor, fds = self.cpu.allocate(shape, dtype, device)
        self.fds += fds
        return buffer, descriptor

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.cpu.close()
        self.cuda.clear()


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
    if isinstance(value, type) and _class_name(value) in _IPC_CLASSES:
        return {"class": _class_name(value)}
    return {"pickle": wire.pack_object(value)}


class Decoder:
    """The kernel process's side: built before the candidate's module is imported, so that what it resolves
    (torch classes, the CUDA rebuild function) cannot have been replaced by then."""

    def __init__(self) -> None:
        import torch
        from torch.multiprocessing.reductions import rebuild_cuda_tensor

        self.torch = torch
        self._rebuild_cuda = rebuild_cuda_tensor
        self._map_cpu = wire.map_tensor
        self._unpack = wire.unpack_object
        candidates = {
            "torch.Tensor": torch.Tensor,
            "torch.nn.parameter.Parameter": torch.nn.Parameter,
            "torch.storage.TypedStorage": torch.storage.TypedStorage,
            "torch.UntypedStorage": torch.UntypedStorage,
        }
        self._classes = {name: candidates[name] for name in _IPC_CLASSES}
        self._dtypes = {str(v).removeprefix("torch."): v for v in vars(torch).values() if isinstance(v, torch.dtype)}

    def tensor(self, descriptor: dict, fds: list[int], keep: list) -> Any:
        if descriptor.get("kind") == "cuda":
            tensor = self._rebuild_cuda(*self.value(descriptor["handle"], fds, keep))
            keep.append(tensor)
            return tensor
        return self._map_cpu(descriptor, fds, keep)

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
        if "class" in node:
            return self._classes[node["class"]]
        return self._unpack(node["pickle"])
