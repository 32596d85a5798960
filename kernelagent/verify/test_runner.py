"""Child process for specs without a reference: runs the frozen LLM-written test against kernel.py.

    python -m kernelagent.verify.test_runner WORKDIR NONCE [--perturb]

`kernel_function` is wrapped before the test imports it: every call is counted, its Triton launches counted and
the PyTorch compute it runs recorded. The report carries the nonce the parent chose, so a process that exits
early, or prints "PASS", produces no valid report.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path


def main(workdir: str, nonce: str, perturb: bool) -> int:
    work = Path(workdir)
    dumps = json.dumps  # bound before candidate code runs
    report: dict = {"nonce": nonce, "phase": "import", "calls": 0, "launches": 0, "compute_ops": []}

    def write() -> None:
        (work / "report.json").write_text(dumps(report, default=str))

    write()
    from kernelagent.verify.loading import load_module
    from kernelagent.verify.runtime_guard import LaunchCounter, OpRecorder

    counter = LaunchCounter()
    counter.install()
    try:
        kernel = load_module(work / "kernel.py", "kernel")
        original = kernel.kernel_function

        def guarded_kernel_function(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            report["calls"] += 1
            recorder = OpRecorder()
            before = counter.launches
            with recorder:
                result = original(*args, **kwargs)
            report["launches"] += counter.launches - before
            report["compute_ops"] = sorted(set(report["compute_ops"]) | set(recorder.compute_ops))
            return _perturbed(result) if perturb else result

        kernel.kernel_function = guarded_kernel_function
        report["phase"] = "test"
        write()
        sys.argv = ["test_kernel.py"]
        runpy.run_path(str(work / "test_kernel.py"), run_name="__main__")
        report["test_passed"] = True
    except SystemExit as exit_:
        report["test_passed"] = exit_.code in (None, 0)
        if not report["test_passed"]:
            report["error"] = f"the test exited with status {exit_.code}"
    except BaseException as err:  # noqa: BLE001 - a failing assertion is the test's verdict
        import traceback

        report["test_passed"] = False
        report["error"] = "".join(traceback.format_exception(type(err), err, err.__traceback__))[-3000:]
    report["phase"] = "done"
    write()
    return 0


def _perturbed(result: object) -> object:
    """The same output with one element nudged by 1% (used to check that the test can see small errors)."""
    import torch

    if isinstance(result, torch.Tensor) and result.is_floating_point() and result.numel() > 0:
        result = result.detach().contiguous().clone()
        flat = result.view(-1)
        flat[0] = flat[0] + max(abs(float(flat[0])) * 1e-2, 1e-2)
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], "--perturb" in sys.argv[3:]))
