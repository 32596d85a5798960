"""Child process for specs without a reference: runs the frozen LLM-written test; never imports the candidate's code.

    python -m kernelagent.verify.test_runner WORKDIR      (stdin: the agent's socket)

The agent sends the test's source, whether to nudge results by 1%, and a socket to the candidate's kernel process
(verify/kernel_server.py). The test imports `kernel_function` from a module `kernel` that exists only here: a proxy
that lends each call's tensors to the kernel process, takes back only a JSON description of the result, allocates
buffers of that shape for the kernel process to copy into, and hands the test private clones. The verdict goes back
over this process's own socket, which the kernel process cannot reach; nothing it sends is unpickled or trusted
beyond validated JSON.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading
import traceback
import types
from pathlib import Path

from kernelagent.verify import call_wire, wire

MAX_RESULT_LEAVES = 64
MAX_RESULT_BYTES = 4 * 1024**3
MAX_KEPT = 20
_DTYPES = frozenset(
    "float16 bfloat16 float32 float64 complex64 complex128 int8 int16 int32 int64 uint8 bool "
    "float8_e4m3fn float8_e5m2".split()
)


class KernelProcessError(RuntimeError):
    """Raised in the test where kernel_function raised, or where its process stopped answering."""


class KernelProxy:
    """`kernel_function` as the test sees it: each call runs in the kernel process, on lent copies of the tensors."""

    def __init__(self, sock: socket.socket, perturb: bool) -> None:
        import torch

        self.torch = torch
        self.sock = sock
        self.perturb = perturb
        self.facts: dict = {"calls": 0, "launches": 0, "compute_ops": [], "refusals": [], "mutated_args": 0}
        self._lock = threading.Lock()  # one call at a time on the socket, should the test use threads

    # -- the conversation

    def expect(self, *events: str) -> dict:
        """The next message of one of these kinds; guard events in between are kept. A kernel error is raised."""
        while True:
            try:
                message, fds = wire.receive(self.sock, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES)
            except (wire.WireError, OSError) as err:
                self.facts.setdefault("channel", f"the kernel process stopped answering ({err})")
                raise KernelProcessError(self.facts["channel"]) from None
            for fd in fds:
                os.close(fd)  # the kernel process has nothing to hand us
            kind = message.get("event")
            if kind == "guard":
                self._note_streamed(message)
            elif kind == "error":
                error = _clean_error(message)
                self.facts.setdefault("kernel_error", error)
                if error["kind"] in ("exit", "refused"):
                    self.facts.setdefault("kernel_misconduct", error)
                raise KernelProcessError(f"{error['type']}: {error['message']}\n{error['traceback']}")
            elif kind in events:
                if kind in ("ready", "copied", "bye"):  # the messages that carry the guard's state
                    self._note_guard(message)
                return message
            else:
                self.facts.setdefault("channel", f"the kernel process sent {str(kind)[:40]!r} out of turn")
                raise KernelProcessError(self.facts["channel"])

    def send(self, message: dict, fds: list[int]) -> None:
        try:
            _send_with_fds(self.sock, message, fds)
        except (wire.WireError, OSError) as err:
            self.facts.setdefault("channel", f"the kernel process stopped answering ({err})")
            raise KernelProcessError(self.facts["channel"]) from None

    def __call__(self, *args: object, **kwargs: object) -> object:
        with self._lock:
            return self._call(args, kwargs)

    def _call(self, args: tuple, kwargs: dict) -> object:
        torch = self.torch
        self.facts["calls"] += 1
        n = self.facts["calls"]
        lender = call_wire.Lender()
        try:
            pairs: list = []
            encoded = {
                "args": call_wire.encode(list(args), lender, pairs),
                "kwargs": call_wire.encode(kwargs, lender, pairs),
            }
            if lender.cuda:
                torch.cuda.synchronize()
            fds, lender.fds = lender.fds, []
            self.send({"event": "call", "n": n, **encoded}, fds)
            structure = self.expect("result").get("structure")
            specs: list[dict] = []
            _check_structure(structure, specs, 0)
            if sum(_nbytes(spec, torch) for spec in specs) > MAX_RESULT_BYTES:
                raise KernelProcessError(f"kernel_function's result is over {MAX_RESULT_BYTES >> 30} GiB")
            buffers, descriptors = [], []
            for spec in specs:
                buffer, descriptor = lender.allocate(spec["shape"], getattr(torch, spec["dtype"]), spec["device"])
                buffer.fill_(float("nan") if buffer.is_floating_point() else -1)  # a value never written shows
                buffers.append(buffer)
                descriptors.append(descriptor)
            if lender.cuda:
                torch.cuda.synchronize()
            fds, lender.fds = lender.fds, []
            self.send({"event": "buffers", "n": n, "outputs": descriptors}, fds)
            copied = self.expect("copied")
            self.facts["launches"] += _count(copied.get("launches"))
            private = [buffer.clone() for buffer in buffers]
            self._write_back(pairs)
        finally:
            lender.close()
        result = _rebuild(structure, iter(private))
        return _perturbed(result, torch) if self.perturb else result

    def finish(self) -> None:
        """The kernel process must still be there and answering when the test is done."""
        self.send({"event": "finish"}, [])
        self.expect("bye")
        self.facts["answered_to_the_end"] = True

    # -- arguments

    def _write_back(self, pairs: list) -> None:
        """What the kernel wrote into its arguments shows in the test's tensors, as it would after a direct call
        (out= and in-place kernels)."""
        torch = self.torch
        with torch.no_grad():
            for original, shared in pairs:
                if not _unchanged(original, shared, torch):
                    original.copy_(shared)
                    self.facts["mutated_args"] += 1

    # -- evidence from the kernel process's guard

    def _note_streamed(self, message: dict) -> None:
        key = "refusals" if message.get("what") == "refused" else "streamed_ops"
        if key == "streamed_ops" and self.facts["calls"] == 0:
            return  # import may compute (module-level constants); calls may not
        items = self.facts.setdefault(key, [])
        if len(items) < MAX_KEPT:
            items.append(str(message.get("detail"))[:200])

    def _note_guard(self, message: dict) -> None:
        where = "import" if self.facts["calls"] == 0 else f"call {self.facts['calls']}"
        if message.get("mode_active") is not True:
            self.facts.setdefault("mode_lost", where)
        if _count(message.get("new_threads")) > 0:
            self.facts.setdefault("threads", where)
        ops = message.get("compute_ops")
        if self.facts["calls"] and isinstance(ops, list):
            for op in ops:
                if len(self.facts["compute_ops"]) < MAX_KEPT and str(op)[:120] not in self.facts["compute_ops"]:
                    self.facts["compute_ops"].append(str(op)[:120])


def _send_with_fds(sock: socket.socket, message: dict, fds: list[int]) -> None:
    """Descriptors beyond one message's 64 go ahead in `fds` messages; ours are closed once sent."""
    try:
        for start in range(0, max(1, len(fds)), wire.MAX_FDS_PER_MESSAGE):
            chunk = fds[start : start + wire.MAX_FDS_PER_MESSAGE]
            last = start + wire.MAX_FDS_PER_MESSAGE >= len(fds)
            wire.send(sock, message if last else {"event": "fds"}, chunk)
    finally:
        for fd in fds:
            os.close(fd)


def _unchanged(original, shared, torch) -> bool:  # noqa: ANN001
    if torch.equal(original, shared):
        return True
    if original.is_floating_point() or original.is_complex():
        return bool(((original == shared) | (torch.isnan(original) & torch.isnan(shared))).all())
    return False


# -- what the kernel process says about its result (untrusted JSON)


def _check_structure(node: object, specs: list[dict], depth: int) -> None:
    """Raises KernelProcessError unless node is a well-formed description; collects the tensor leaves' specs."""
    if depth > 8 or not isinstance(node, dict) or len(node) > 2:
        raise KernelProcessError("the kernel process described its result in a malformed way")
    if "tensor" in node:
        spec = node["tensor"]
        shape = spec.get("shape") if isinstance(spec, dict) else None
        valid = (
            isinstance(shape, list)
            and len(shape) <= 16
            and all(type(d) is int and 0 <= d < 1 << 40 for d in shape)
            and spec.get("dtype") in _DTYPES
            and spec.get("device") in ("cpu", "cuda")
        )
        if not valid or len(specs) >= MAX_RESULT_LEAVES:
            raise KernelProcessError("the kernel process described a result tensor in a malformed way")
        specs.append({"shape": shape, "dtype": spec["dtype"], "device": spec["device"]})
        return
    for kind in ("list", "tuple"):
        if kind in node:
            if not isinstance(node[kind], list):
                raise KernelProcessError("the kernel process described its result in a malformed way")
            for item in node[kind]:
                _check_structure(item, specs, depth + 1)
            return
    if node.get("none") is True:
        return
    if node.get("python") in ("int", "float", "bool") and type(node.get("value")).__name__ == node["python"]:
        return
    raise KernelProcessError("the kernel process described its result in a malformed way")


def _rebuild(node: dict, private) -> object:  # noqa: ANN001
    if "tensor" in node:
        return next(private)
    if "list" in node:
        return [_rebuild(item, private) for item in node["list"]]
    if "tuple" in node:
        return tuple(_rebuild(item, private) for item in node["tuple"])
    return None if node.get("none") else node["value"]


def _nbytes(spec: dict, torch) -> int:  # noqa: ANN001
    numel = 1
    for dim in spec["shape"]:
        numel *= dim
    return numel * torch.empty((), dtype=getattr(torch, spec["dtype"])).element_size()


def _perturbed(result: object, torch) -> object:  # noqa: ANN001
    """The same result with one element of its first floating tensor nudged by 1% (does the test see small errors?)."""
    if isinstance(result, torch.Tensor):
        if result.is_floating_point() and result.numel() > 0:
            flat = result.view(-1)
            flat[0] = flat[0] + max(abs(float(flat[0])) * 1e-2, 1e-2)
        return result
    if type(result) in (list, tuple):
        for item in result:
            if _perturbed_first(item, torch):
                break
    return result


def _perturbed_first(item: object, torch) -> bool:  # noqa: ANN001
    if isinstance(item, torch.Tensor) and item.is_floating_point() and item.numel() > 0:
        _perturbed(item, torch)
        return True
    return type(item) in (list, tuple) and any(_perturbed_first(x, torch) for x in item)


def _clean_error(message: dict) -> dict:
    return {
        key: str(message.get(key, ""))[:limit]
        for key, limit in (("kind", 40), ("type", 80), ("message", 2000), ("traceback", 3000), ("feature", 200))
    } | {"phase": str(message.get("phase", ""))[:20]}


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


# -- the process


def main(workdir: str) -> int:
    _undumpable()
    agent = socket.socket(fileno=0)
    init, fds = wire.receive(agent, limit=wire.MAX_JUDGE_MESSAGE_BYTES)
    if len(fds) != 1:
        return 2
    proxy = KernelProxy(socket.socket(fileno=fds[0]), bool(init.get("perturb")))
    verdict: dict = {"event": "verdict", "test_passed": False}
    try:
        ready = proxy.expect("ready")
        verdict["kernel_import_s"] = ready.get("import_s")
    except KernelProcessError as err:
        verdict["error"] = f"kernel.py could not be imported: {err}"
    else:
        verdict |= run_test(init["test_code"], Path(workdir), proxy)
        if not proxy.facts.get("channel"):
            try:
                proxy.finish()
            except KernelProcessError:
                pass
    wire.send(agent, verdict | proxy.facts)
    return 0


def run_test(test_code: str, work: Path, proxy: KernelProxy) -> dict:
    """Runs the test as `python test_kernel.py` would, with `kernel` importable and `kernel_function` the proxy."""
    kernel = types.ModuleType("kernel")
    kernel.kernel_function = proxy
    sys.modules["kernel"] = kernel
    main_module = types.ModuleType("__main__")
    main_module.__file__ = str(work / "test_kernel.py")
    sys.modules["__main__"] = main_module
    sys.argv = ["test_kernel.py"]
    sys.path.insert(0, str(work))
    try:
        exec(compile(test_code, str(work / "test_kernel.py"), "exec"), main_module.__dict__)  # noqa: S102 - the frozen test
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            return {"test_passed": False, "error": f"the test exited with status {exit_.code}"}
    except BaseException as err:  # noqa: BLE001 - a failing assertion is the test's verdict
        return {"test_passed": False, "error": "".join(traceback.format_exception(err))[-3000:]}
    return {"test_passed": True}


def _undumpable() -> None:
    """Other processes of this user (the kernel process, say, on an unconfined GPU run) may not ptrace this one or
    read its memory through /proc."""
    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
