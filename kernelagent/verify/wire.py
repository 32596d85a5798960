"""The judge's wire: framed JSON messages, with file descriptors attached, over one Unix stream socket per candidate.

Both ends import this module, but the two directions are not alike. What the judge sends may carry pickled values
(the reference's init inputs) and tensor handles: the candidate's runner trusts the judge. What the candidate sends
is JSON only, size-capped and read with a deadline: the judge trusts nothing from it but its shape, and never
unpickles, `torch.load`s or opens anything a candidate named.

Tensors cross as shared memory, never as files or copies through the socket:
- CPU (the Triton interpreter): a memfd per tensor, passed with SCM_RIGHTS and mapped by both sides;
- CUDA: the IPC handle of the judge's device allocation (torch.multiprocessing's reduction), mapped by the candidate.
"""

from __future__ import annotations

import base64
import fcntl
import json
import mmap
import os
import pickle
import select
import socket
import struct
import time
from typing import Any

_HEADER = struct.Struct("!I")
MAX_FDS_PER_MESSAGE = 64
# A candidate has nothing large to say: phases, counts, shapes, an error with a trimmed traceback.
MAX_CANDIDATE_MESSAGE_BYTES = 1 << 20
MAX_JUDGE_MESSAGE_BYTES = 1 << 30


class WireError(Exception):
    """The other end sent something malformed, too large, too late, or hung up."""


def send(sock: socket.socket, message: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
    """Raises WireError when the other end is gone (a candidate that closed its end only fails itself)."""
    body = json.dumps(message, separators=(",", ":")).encode()
    header = _HEADER.pack(len(body))
    try:
        if fds:
            socket.send_fds(sock, [header], list(fds))
        else:
            sock.sendall(header)
        sock.sendall(body)
    except OSError as err:
        raise WireError(f"the other end hung up: {err}") from err


def receive(sock: socket.socket, *, limit: int, deadline: float | None = None) -> tuple[dict, list[int]]:
    """One message and the descriptors that came with it. Raises WireError on EOF, oversize, bad JSON, a deadline or
    a connection the other end broke (a candidate that resets its socket with our next frame unread fails itself)."""
    try:
        return _receive(sock, limit, deadline)
    except OSError as err:
        raise WireError(f"the other end broke the connection: {err}") from err


def _receive(sock: socket.socket, limit: int, deadline: float | None) -> tuple[dict, list[int]]:
    header, fds = _receive_header(sock, deadline)
    (size,) = _HEADER.unpack(header)
    if size > limit:
        _close_all(fds)
        raise WireError(f"message of {size} bytes is over the limit of {limit}")
    try:
        body = _receive_exactly(sock, size, deadline)
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:  # RecursionError: JSON nested 60,000 deep
        _close_all(fds)
        raise WireError(f"malformed message: {str(err)[:200]}") from err
    except (WireError, OSError):
        _close_all(fds)
        raise
    if not isinstance(message, dict):
        _close_all(fds)
        raise WireError("a message must be a JSON object")
    return message, fds


def _receive_header(sock: socket.socket, deadline: float | None) -> tuple[bytes, list[int]]:
    _wait_readable(sock, deadline)
    data, fds, flags, _ = socket.recv_fds(sock, _HEADER.size, MAX_FDS_PER_MESSAGE)
    if flags & socket.MSG_CTRUNC:
        _close_all(fds)
        raise WireError("too many descriptors attached")
    if not data:
        _close_all(fds)
        raise WireError("the other end hung up")
    if len(data) < _HEADER.size:
        try:
            data += _receive_exactly(sock, _HEADER.size - len(data), deadline)
        except (WireError, OSError):
            _close_all(fds)
            raise
    return data, list(fds)


def _receive_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        _wait_readable(sock, deadline)
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise WireError("the other end hung up mid-message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _wait_readable(sock: socket.socket, deadline: float | None) -> None:
    if deadline is None:
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
        raise WireError("no message before the deadline")


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------------------------
# Values the judge hands to the candidate's runner (trusted -> untrusted only)


def pack_object(value: Any) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


def unpack_object(text: str) -> Any:
    """Only ever called by the candidate's runner on what the judge sent."""
    return pickle.loads(base64.b64decode(text))  # noqa: S301 - from the judge, never from a candidate


# ------------------------------------------------------------------------------------------------------------------
# Shared tensors


class SharedTensors:
    """Tensors the judge allocates and lends to one candidate; both sides see the same memory.

    CPU tensors live in memfds (handed over as descriptors), CUDA tensors in the judge's device memory (handed over
    as IPC handles). The judge keeps this object until the candidate's process tree is dead, then closes it.
    """

    def __init__(self) -> None:
        self._keep: list[Any] = []

    def lend(self, tensor: Any, *, copy: bool = True) -> tuple[dict, list[int]]:
        """A judge-owned shared tensor with tensor's contents; returns (descriptor, fds to send with it).

        copy=False lends a CUDA tensor itself (layout included), for one the judge no longer needs intact; CPU
        tensors are always copied into fresh shared memory."""
        _shared, descriptor, fds = self.lend_tensor(tensor, copy=copy)
        return descriptor, fds

    def lend_tensor(self, tensor: Any, *, copy: bool = True) -> tuple[Any, dict, list[int]]:
        """lend(), also returning the shared tensor itself: what the candidate sees, and may have written to."""
        if tensor.is_cuda:
            shared = tensor.detach().clone() if copy else tensor.detach()
            return shared, self._lend_cuda(shared), []
        return self._lend_cpu(tensor.detach().contiguous())

    def allocate(self, shape: list[int], dtype: Any, device: Any) -> tuple[Any, dict, list[int]]:
        """An empty judge-owned buffer the candidate writes into: (tensor, descriptor, fds)."""
        import torch

        if torch.device(device).type == "cuda":
            buffer = torch.empty(shape, dtype=dtype, device=device)
            return buffer, self._lend_cuda(buffer), []
        buffer, fd = _memfd_tensor(shape, dtype, self._keep)
        return buffer, _descriptor(buffer, "cpu"), [fd]

    def _lend_cuda(self, tensor: Any) -> dict:
        from torch.multiprocessing.reductions import reduce_tensor

        self._keep.append(tensor)
        _rebuild, args = reduce_tensor(tensor)
        return {**_descriptor(tensor, "cuda"), "ipc": [_encode_ipc(value) for value in args]}

    def _lend_cpu(self, tensor: Any) -> tuple[Any, dict, list[int]]:
        shared, fd = _memfd_tensor(list(tensor.shape), tensor.dtype, self._keep)
        shared.copy_(tensor)
        return shared, _descriptor(shared, "cpu"), [fd]

    def close(self) -> None:
        self._keep.clear()


def _descriptor(tensor: Any, kind: str) -> dict:
    return {"kind": kind, "shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}


def _memfd_tensor(shape: list[int], dtype: Any, keep: list[Any]) -> tuple[Any, int]:
    """A CPU tensor backed by a fresh memfd; returns it and a descriptor the caller sends (and then closes)."""
    import torch

    itemsize = torch.empty((), dtype=dtype).element_size()
    numel = 1
    for dim in shape:
        numel *= int(dim)
    nbytes = max(1, numel * itemsize)
    fd = os.memfd_create("kernelagent-tensor", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, nbytes)
    # Its size is fixed for good before the other side gets it: a candidate that shrank a judge-owned memfd made
    # the judge's next touch of the mapping a SIGBUS (the judge died; no verdict).
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    mapped = mmap.mmap(fd, nbytes)
    keep.append(mapped)
    flat = torch.frombuffer(mapped, dtype=torch.uint8, count=nbytes)
    return flat[: numel * itemsize].view(dtype).view(shape), fd


def map_tensor(descriptor: dict, fds: list[int], keep: list[Any], rebuild_cuda: Any = None) -> Any:
    """The borrowing side: the lender's shared tensor as a torch tensor (consumes one fd for a CPU tensor).
    rebuild_cuda: torch's rebuild function as the caller bound it before candidate code could replace it."""
    import torch

    dtype = getattr(torch, descriptor["dtype"])
    if descriptor["kind"] == "cuda":
        if rebuild_cuda is None:
            from torch.multiprocessing.reductions import rebuild_cuda_tensor as rebuild_cuda

        tensor = rebuild_cuda(*[_decode_ipc(value) for value in descriptor["ipc"]])
        keep.append(tensor)
        return tensor
    fd = fds.pop(0)
    try:
        size = os.fstat(fd).st_size
        mapped = mmap.mmap(fd, size)
    finally:
        os.close(fd)
    keep.append(mapped)
    numel = 1
    for dim in descriptor["shape"]:
        numel *= int(dim)
    flat = torch.frombuffer(mapped, dtype=torch.uint8, count=size)
    return flat[: numel * torch.empty((), dtype=dtype).element_size()].view(dtype).view(descriptor["shape"])


# CUDA IPC handles as JSON: torch's reduction yields classes, a dtype, a size, handles (bytes) and numbers. They travel
# without pickle, so the candidate's runner never unpickles anything once candidate code may run.
def _ipc_types() -> dict[str, Any]:
    import torch

    return {
        "Tensor": torch.Tensor,
        "Parameter": torch.nn.Parameter,
        "UntypedStorage": torch.UntypedStorage,
        "TypedStorage": torch.storage.TypedStorage,
    }


def _encode_ipc(value: Any) -> Any:
    import torch

    if isinstance(value, type):
        names = {cls: name for name, cls in _ipc_types().items()}
        if value not in names:
            raise TypeError(f"unexpected type in a CUDA IPC handle: {value!r}")
        return {"type": names[value]}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.Size):
        return {"size": list(value)}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, bytes):
        return {"bytes": base64.b64encode(value).decode()}
    if isinstance(value, (tuple, list)):
        return {"tuple": [_encode_ipc(v) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"unexpected value in a CUDA IPC handle: {type(value).__name__}")


def _decode_ipc(value: Any) -> Any:
    import torch

    if not isinstance(value, dict):
        return value
    (kind, payload), = value.items()
    if kind == "type":
        return _ipc_types()[payload]
    if kind == "dtype":
        return getattr(torch, payload)
    if kind == "size":
        return torch.Size(payload)
    if kind == "device":
        return torch.device(payload)
    if kind == "bytes":
        return base64.b64decode(payload)
    return tuple(_decode_ipc(v) for v in payload)
