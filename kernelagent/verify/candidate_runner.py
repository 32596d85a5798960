"""Child process, untrusted: imports a candidate, runs its forward on saved inputs, saves what it returned.

    python -m kernelagent.verify.candidate_runner WORKDIR

WORKDIR holds candidate.py, init.pt, inputs_<k>.pt and config.json. The runner writes outputs_<k>.pt and
report.json (phase reached, Triton launches, compute ops seen, the error if any). It decides nothing: the
verdict is computed by the parent from these files, against expected outputs this process never sees.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from kernelagent.verify.loading import (
    InterfaceError,
    build_model,
    load_inputs,
    load_module,
    report_writer,
    tensors_in,
)


def main(workdir: str) -> int:
    work = Path(workdir)
    report: dict = {"phase": "start", "draws": []}
    write = report_writer(work / "report.json")
    started = time.perf_counter()
    import torch  # noqa: F401 - timed separately from the candidate
    import triton  # noqa: F401

    from kernelagent.verify.runtime_guard import LaunchCounter, OpRecorder, changed_functions, protected_functions

    report["import_s"] = round(time.perf_counter() - started, 3)
    config = json.loads((work / "config.json").read_text())
    counter = LaunchCounter()
    counter.install()
    guarded = protected_functions()
    try:
        report["phase"] = "import"
        write(report)
        built = time.perf_counter()
        model = build_candidate(work, config)  # on a GPU this also creates the child's CUDA context
        report["build_s"] = round(time.perf_counter() - built, 3)
        report["phase"] = "forward"
        write(report)
        for k in range(config["draws"]):
            inputs = load_inputs(work / f"inputs_{k}.pt", config["device"])
            launches_before = counter.launches
            recorder = OpRecorder()
            t0 = time.perf_counter()
            with torch.no_grad(), recorder:
                result = model(*inputs)
            if config["device"] == "cuda":
                torch.cuda.synchronize()
            draw = {
                "k": k,
                "wall_s": round(time.perf_counter() - t0, 4),
                "launches": counter.launches - launches_before,
                "compute_ops": sorted(set(recorder.compute_ops)),
                "output_devices": sorted({str(t.device) for t in tensors_in(result)}),
            }
            report["draws"].append(draw)
            tampered = changed_functions(guarded)
            if tampered:
                report["tampered"] = tampered
                break
            torch.save(_to_cpu(result), work / f"outputs_{k}.pt")
            write(report)
        report["phase"] = "done"
    except BaseException as err:  # noqa: BLE001 - everything the candidate raises is evidence, even SystemExit
        report["error"] = describe_error(err, work / "candidate.py")
    write(report)
    return 0


def build_candidate(work: Path, config: dict):  # noqa: ANN201
    import torch

    module = load_module(work / "candidate.py", "candidate")
    init = torch.load(work / "init.pt", weights_only=True)
    entry = getattr(module, config["entry"], None)
    if entry is None:
        raise InterfaceError(f"the module defines no {config['entry']}")
    cap_gpu_memory(config)
    return build_model(entry, init, config["device"], config.get("dtype"))


def cap_gpu_memory(config: dict) -> None:
    import torch

    if config["device"] == "cuda" and config.get("gpu_memory_bytes"):
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, config["gpu_memory_bytes"] / total))


def describe_error(err: BaseException, candidate: Path) -> dict:
    kind = _classify(err)
    return {"kind": kind, "type": type(err).__name__, "message": str(err)[:2000], "traceback": _trim(err, candidate)}


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


def _to_cpu(value: object) -> object:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        return [_to_cpu(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
