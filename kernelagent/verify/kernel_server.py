"""Child process, untrusted: imports a candidate's kernel.py and serves its kernel_function to a test process.

    python -m kernelagent.verify.kernel_server WORKDIR DEVICE      (stdin: the test process's socket)

Specs without a reference: the frozen test runs in another process (verify/test_runner.py) that never imports
kernel.py. For each call the test process lends the tensor arguments as shared memory (other arguments pickled, in
the trusted-to-untrusted direction only); this process runs kernel_function under the runtime guard, describes the
result (JSON: structure, shapes, dtypes), and copies it into buffers the test process allocated from that
description. It decides nothing: whether the result is right is the test's verdict, in the test's process.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kernelagent.verify import call_wire, wire
from kernelagent.verify.candidate_runner import (
    Channel,
    _bridge_interpreter,
    _guard_state,
    _prepare_device,
    describe_error,
)
from kernelagent.verify.loading import InterfaceError, load_module

_OWN_FILES = frozenset(
    str(Path(__file__).resolve().parent / name)
    for name in ("kernel_server.py", "call_wire.py", "candidate_runner.py", "runtime_guard.py", "wire.py")
)
MAX_RESULT_DEPTH = 8


def main(workdir: str, device: str) -> int:
    started = time.perf_counter()
    import torch
    import triton  # noqa: F401

    from kernelagent.verify import runtime_guard as guard

    channel = Channel()
    kernel_path = Path(workdir) / "kernel.py"
    evidence = guard.GuardEvidence(channel.report)
    audit = guard.AuditGuard(evidence, _OWN_FILES)
    audit.install()
    counter = guard.LaunchCounter()
    counter.install()
    decoder = call_wire.Decoder()
    phase = "import"
    try:
        _prepare_device({"device": device}, torch)
        if device == "cpu":
            _bridge_interpreter()
        baseline_tasks = guard.task_ids()
        guard.refuse_python_threads()
        recorder = guard.OpRecorder(evidence)
        counter.recorder = recorder
        audit.armed = True
        import_started = time.perf_counter()
        with torch.no_grad(), recorder:
            module = load_module(kernel_path, "kernel")
            entry = getattr(module, "kernel_function", None)
            if not callable(entry):
                raise InterfaceError("kernel.py defines no kernel_function")
            state = _guard_state(recorder, counter, baseline_tasks, guard)
        channel.report(
            {
                "event": "ready",
                "startup_s": round(import_started - started, 3),
                "import_s": round(time.perf_counter() - import_started, 3),
                **state,
            }
        )
        phase = "call"
        serve(entry, channel, decoder, recorder, counter, baseline_tasks, kernel_path, device, torch, guard)
    except wire.WireError:
        return 0  # the test process is gone: nothing left to serve
    except BaseException as err:  # noqa: BLE001 - everything the candidate raises is evidence, even SystemExit
        channel.report({"event": "error", "phase": phase, **describe_error(err, kernel_path)})
    return 0


def serve(entry, channel, decoder, recorder, counter, baseline_tasks, kernel_path, device, torch, guard) -> None:  # noqa: ANN001, PLR0913
    """Answer calls until the test process says it has finished (or hangs up)."""
    keep: list = []
    while True:
        message, fds = _next(channel)
        if message.get("event") != "call":
            break
        n = message.get("n")
        recorder.evidence.next_phase()
        launches_before = counter.launches
        try:
            with torch.no_grad(), recorder:
                args = decoder.value(message["args"], fds, keep)
                kwargs = decoder.value(message["kwargs"], fds, keep)
                result = entry(*args, **kwargs)
                leaves: list = []
                structure = describe(result, leaves, 0, torch)
        except Exception as err:  # noqa: BLE001 - the test process raises it in the test, as a call would have
            channel.report({"event": "error", "n": n, "phase": "call", **describe_error(err, kernel_path)})
            continue
        channel.report({"event": "result", "n": n, "structure": structure})
        message, fds = _next(channel)
        if message.get("event") != "buffers":
            break
        with torch.no_grad(), recorder:
            buffers = [decoder.tensor(d, fds, keep) for d in message["outputs"]]
            for leaf, buffer in zip(leaves, buffers, strict=True):
                buffer.copy_(leaf)
            if device == "cuda":
                torch.cuda.synchronize()
            state = _guard_state(recorder, counter, baseline_tasks, guard)
        del args, kwargs, result, leaves, buffers
        keep.clear()  # the test process has its own copies from here on
        channel.report({"event": "copied", "n": n, "launches": counter.launches - launches_before, **state})
    with recorder:
        final = _guard_state(recorder, counter, baseline_tasks, guard)
    channel.report({"event": "bye", **final})


def _next(channel: Channel) -> tuple[dict, list[int]]:
    """The next message, with the descriptors of any `fds` messages that preceded it (64 fit in one message)."""
    pending: list[int] = []
    while True:
        try:
            message, fds = channel.next()
        except OSError as err:  # reset: the test process died with our last message unread
            raise wire.WireError(str(err)) from err
        pending += fds
        if message.get("event") != "fds":
            return message, pending


def describe(value: object, leaves: list, depth: int, torch) -> dict:  # noqa: ANN001
    """The result's shape as JSON, with its tensors appended to `leaves` in order."""
    if depth > MAX_RESULT_DEPTH:
        raise InterfaceError(f"kernel_function's result is nested more than {MAX_RESULT_DEPTH} levels deep")
    if isinstance(value, torch.Tensor):
        leaves.append(value.detach())
        return {
            "tensor": {
                "shape": list(value.shape),
                "dtype": str(value.dtype).removeprefix("torch."),
                "device": value.device.type,
            }
        }
    if type(value) in (list, tuple):
        return {type(value).__name__: [describe(item, leaves, depth + 1, torch) for item in value]}
    if value is None:
        return {"none": True}
    if type(value) in (int, float, bool):
        return {"python": type(value).__name__, "value": value}
    raise InterfaceError(
        f"kernel_function returned a {type(value).__name__}; results must be tensors, Python numbers, None, "
        "or lists/tuples of them"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
