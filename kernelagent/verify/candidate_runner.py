"""Child process, untrusted: builds a candidate's ModelNew and runs it on inputs the judge lends, into judge buffers.

    python -m kernelagent.verify.candidate_runner WORKDIR      (stdin: the judge's socket)

WORKDIR holds candidate.py only. Everything else comes over the socket on stdin, from the judge process: the
initial state, each input draw (shared memory) and a buffer per output that this runner copies the forward's
result into. This process decides nothing and the judge believes nothing it says about correctness: it reports
phases, shapes, Triton launches and what the guard saw, and the judge compares the buffers with outputs it
computed itself, on inputs it drew after the candidate's model was built.
"""

from __future__ import annotations

import json
import socket
import sys
import time
import traceback
from pathlib import Path

from kernelagent.verify import wire
from kernelagent.verify.loading import InterfaceError, build_model, load_module

_OWN_FILES = frozenset(
    str(Path(__file__).resolve().parent / name) for name in ("candidate_runner.py", "runtime_guard.py", "wire.py")
)


class Channel:
    """This process's end of the judge's socket. Bound before candidate code exists: patching json or socket later
    changes nothing here."""

    def __init__(self) -> None:
        self.sock = socket.socket(fileno=0)
        self._send, self._receive, self._dumps = wire.send, wire.receive, json.dumps

    def report(self, message: dict) -> None:
        self._send(self.sock, message)

    def next(self) -> tuple[dict, list[int]]:
        return self._receive(self.sock, limit=wire.MAX_JUDGE_MESSAGE_BYTES)


def main(workdir: str) -> int:
    started = time.perf_counter()
    import torch
    import triton  # noqa: F401

    from kernelagent.verify import runtime_guard as guard

    channel = Channel()
    init, fds = channel.next()
    config = init["config"]
    keep: list = []  # shared mappings must outlive every tensor that views them
    evidence = guard.GuardEvidence(channel.report)
    audit = guard.AuditGuard(evidence, _OWN_FILES)
    audit.install()
    counter = guard.LaunchCounter()
    counter.install()
    phase = "setup"
    try:
        state = {d["name"]: wire.map_tensor(d, fds, keep) for d in init["state"]}
        init_inputs = wire.unpack_object(init["init_inputs"])
        _prepare_device(config, torch)
        if config.get("interpret"):
            _bridge_interpreter()
        baseline_tasks = guard.task_ids()
        import_s = round(time.perf_counter() - started, 3)
        guard.refuse_python_threads()
        guard.seal_dispatch()
        guard.seal_data_exits(counter.inside)
        recorder = guard.OpRecorder(evidence)
        counter.recorder = recorder
        audit.armed = True
        phase = "import"
        with torch.no_grad(), recorder:
            built = time.perf_counter()
            module = load_module(Path(workdir) / "candidate.py", "candidate")
            phase = "build"
            entry = getattr(module, config["entry"], None)
            if entry is None:
                raise InterfaceError(f"the module defines no {config['entry']}")
            model = build_model(
                entry,
                {"init_inputs": init_inputs, "state_dict": state, "seed": config["seed"]},
                config["device"],
                config.get("dtype"),
            )
            guard_state = _guard_state(recorder, counter, baseline_tasks, guard)
        del state  # the model holds its own copy; the judge's lent state may go
        channel.report(
            {"event": "built", "import_s": import_s, "build_s": round(time.perf_counter() - built, 3), **guard_state}
        )
        phase = "forward"
        while True:
            message, fds = channel.next()
            if message.get("event") != "draw":
                break
            # A draw's mappings are its own: dropped after it, so the judge can free them (see judge._release_draw).
            channel.report(run_draw(model, message, fds, [], recorder, counter, baseline_tasks, config, torch, guard))
        with recorder:
            final = _guard_state(recorder, counter, baseline_tasks, guard)
        channel.report({"event": "bye", **final})
    except wire.WireError:
        return 0  # the judge ended the session (it has its verdict) or is gone: nothing left to say
    except BaseException as err:  # noqa: BLE001 - everything the candidate raises is evidence, even SystemExit
        try:
            channel.report({"event": "error", "phase": phase, **describe_error(err, Path(workdir) / "candidate.py")})
        except wire.WireError:
            pass
    return 0


def run_draw(model, message, fds, keep, recorder, counter, baseline_tasks, config, torch, guard) -> dict:  # noqa: ANN001, PLR0913
    """One input draw: map the judge's inputs and output buffers, run forward under the guard, copy into the buffers."""
    inputs = [
        _lent_value(d, fds, keep) for d in message["inputs"]
    ]
    buffers = [wire.map_tensor(d, fds, keep) if "kind" in d else None for d in message["outputs"]]
    recorder.evidence.next_phase()
    launches_before = counter.launches
    t0 = time.perf_counter()
    with torch.no_grad(), recorder:
        result = model(*inputs)
        leaves = flatten_result(result)
        structure = [describe_leaf(leaf) for leaf in leaves]
        if len(leaves) == len(buffers):
            for leaf, buffer, shape in zip(leaves, buffers, structure, strict=True):
                if buffer is not None and _fits(leaf, buffer):
                    buffer.copy_(leaf)
                elif buffer is None:
                    shape["value"] = _scalar(leaf)
        if config["device"] == "cuda":
            torch.cuda.synchronize()
        state = _guard_state(recorder, counter, baseline_tasks, guard)
    return {
        "event": "draw_done",
        "k": message["k"],
        "wall_s": round(time.perf_counter() - t0, 4),
        "launches": counter.launches - launches_before,
        "structure": structure,
        **state,
    }


def _lent_value(descriptor: dict, fds: list[int], keep: list) -> object:
    if "kind" in descriptor:
        return wire.map_tensor(descriptor, fds, keep)
    if "number" in descriptor:
        return descriptor["number"]
    return wire.unpack_object(descriptor["value"])  # another Python value from the judge (rare; before arming in init)


def flatten_result(value: object) -> list:
    """Outputs as leaves. Only exact lists/tuples and plain tensors or Python numbers are accepted: a subclass could
    run code of its own when the harness walks it."""
    import torch

    if type(value) in (list, tuple):
        return [leaf for item in value for leaf in flatten_result(item)]
    if type(value) in (torch.Tensor, torch.nn.Parameter) or type(value) in (int, float, bool):
        return [value]
    raise InterfaceError(f"forward returned a {type(value).__name__}; outputs must be plain tensors, lists or tuples")


def describe_leaf(leaf: object) -> dict:
    if type(leaf) in (int, float, bool):
        return {"python": type(leaf).__name__}
    return {"shape": list(leaf.shape), "dtype": str(leaf.dtype).removeprefix("torch."), "device": leaf.device.type}


def _fits(leaf: object, buffer: object) -> bool:
    return (
        type(leaf) is not bool
        and hasattr(leaf, "shape")
        and leaf.shape == buffer.shape
        and leaf.dtype == buffer.dtype
        and leaf.device.type == buffer.device.type
    )


def _scalar(leaf: object) -> object:
    value = leaf.item() if hasattr(leaf, "item") and getattr(leaf, "numel", lambda: 0)() == 1 else leaf
    return value if type(value) in (int, float, bool) else None


def _guard_state(recorder, counter, baseline_tasks, guard) -> dict:  # noqa: ANN001
    new_tasks = sorted(guard.task_ids() - baseline_tasks)
    return {
        "mode_active": guard.mode_is_active(recorder) and not counter.mode_lost,
        "new_threads": len(new_tasks),
        "scalar_reads": recorder.evidence.scalar_reads,
        "compute_ops": list(recorder.evidence.compute_ops),
        "refusals": list(recorder.evidence.refusals),
    }


def _prepare_device(config: dict, torch) -> None:  # noqa: ANN001
    """Create the CUDA context and Triton's driver before candidate code runs (and before the task-id baseline)."""
    if config["device"] != "cuda":
        return
    torch.cuda.init()
    torch.empty(1, device="cuda")
    if config.get("gpu_memory_bytes"):
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, config["gpu_memory_bytes"] / total))
    from triton.runtime import driver

    driver.active.get_current_device()
    driver.active.get_current_stream(driver.active.get_current_device())  # triton 3.6 requires the device


def _bridge_interpreter() -> None:
    try:
        from kernelagent.verify import interpreter_bridge
    except ImportError:
        return
    interpreter_bridge.install()


def describe_error(err: BaseException, candidate: Path) -> dict:
    kind = _classify(err)
    described = {
        "kind": kind,
        "type": type(err).__name__,
        "message": str(err)[:2000],
        "traceback": _trim(err, candidate),
    }
    unsupported = _interpreter_limit(err)
    if unsupported:
        described |= {"kind": "interpreter_unsupported", "feature": unsupported}
    return described


def _interpreter_limit(err: BaseException) -> str | None:
    try:
        from kernelagent.verify.interpreter_bridge import unsupported_feature
    except ImportError:
        return None
    import os

    return unsupported_feature(err) if os.environ.get("TRITON_INTERPRET") == "1" else None


_OUT_OF_MEMORY = "can't allocate memory"  # torch's CPU allocator raises RuntimeError, not MemoryError
_COMPILE_TIME_ERRORS = ("ValueError", "TypeError", "AssertionError", "NameError", "CompilationError")


def _classify(err: BaseException) -> str:
    names = {cls.__name__ for cls in type(err).__mro__}
    module = type(err).__module__
    if isinstance(err, SystemExit):
        return "exit"
    if isinstance(err, SyntaxError):
        return "syntax_error"
    if isinstance(err, InterfaceError) or isinstance(err.__cause__, InterfaceError):
        return "interface_error"
    if isinstance(err, PermissionError) and "refused in a candidate's process" in str(err):
        return "refused"
    if isinstance(err, MemoryError) or "OutOfMemoryError" in names or _OUT_OF_MEMORY in str(err):
        return "resource_limit"
    if "CompilationError" in names or module.startswith("triton.compiler") or "CompileTimeAssertionFailure" in names:
        return "compile_error"
    if _raised_in_triton_compiler(err):
        return "compile_error"
    # The interpreter wraps what the GPU compiler would reject (tl semantics errors) in InterpreterError.
    if "InterpreterError" in names and str(err).startswith(_COMPILE_TIME_ERRORS):
        return "compile_error"
    return "runtime_error"


def _raised_in_triton_compiler(err: BaseException) -> bool:
    """Triton's code generator raises plain RuntimeError/ValueError for code it cannot compile."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    # jit.py's dependency finder walks the kernel's source before compiling and rejects what it cannot compile.
    in_dependency_finder = last.filename.endswith("triton/runtime/jit.py") and last.name.startswith(("visit", "record"))
    return in_dependency_finder or any("/triton/compiler/" in f.filename for f in frames[-4:])


def _trim(err: BaseException, candidate: Path) -> str:
    """Keep the candidate's own frames and the final error; the harness's and libraries' frames are noise."""
    frames = traceback.extract_tb(err.__traceback__)
    own = [f for f in frames if f.filename == str(candidate)]
    lines = [f'  File "candidate.py", line {f.lineno}, in {f.name}\n    {f.line}' for f in own[-6:]]
    tail = "".join(traceback.format_exception_only(type(err), err)).strip()
    return ("\n".join(lines) + "\n" + tail).strip()[-3000:]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
