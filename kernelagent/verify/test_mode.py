"""Specs without a PyTorch reference: an LLM-written test decides, but only after it proved it can say no.

A generated test is validated against deliberately wrong kernels (zeros, the input unchanged, a wrong shape,
None); a test that lets one of them pass is rejected and regenerated. The accepted test is frozen by hash: each
verification copies it from the harness folder after checking the hash, so no candidate can change it.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import sys
import time
from pathlib import Path

from kernelagent.llm.client import LLMSettings
from kernelagent.llm.extract import NoCodeInReply, extract_code
from kernelagent.llm.recorded import ask_recorded
from kernelagent.prompting import render
from kernelagent.runs.store import RunStore, read_json
from kernelagent.sandbox import gpu_placement, pinned_env
from kernelagent.sandbox import run_sandboxed_warm as run_sandboxed
from kernelagent.verify import verdict as V
from kernelagent.verify.verifier import child_env, sandbox_limits, static_checks

_FIRST_TENSOR = """
import torch

def _first_tensor(args, kwargs):
    for value in list(args) + list(kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    raise TypeError("no tensor argument")
"""
# Wrong implementations a trustworthy test must reject. Each is a whole kernel.py.
WRONG_KERNELS = {
    "returns zeros": "def kernel_function(*args, **kwargs):\n    return torch.zeros_like(_first_tensor(args, kwargs))\n",
    "returns its input": "def kernel_function(*args, **kwargs):\n    return _first_tensor(args, kwargs).clone()\n",
    "returns a wrong shape": (
        "def kernel_function(*args, **kwargs):\n    return _first_tensor(args, kwargs).flatten()[:-1].clone()\n"
    ),
    "returns None": "def kernel_function(*args, **kwargs):\n    return None\n",
}


class TestRejected(Exception):
    """A generated test that cannot be trusted; the message is fed into the next generation."""


def generate_validated_test(
    *,
    store: RunStore,
    problem: dict,
    device: str,
    settings: LLMSettings,
    attempts: int,
    timeout_s: float,
    cache_dir: Path,
    meta: dict,
) -> dict:
    previous_problem = None
    rejections = []
    for attempt in range(attempts):
        prompt = render("generate_test.j2", problem=problem, torch_device=device, previous_problem=previous_problem)
        reply = ask_recorded(
            store, f"test_attempt{attempt}", render("system.j2"), prompt, settings, meta | {"attempt": attempt}
        )
        test_dir = store.path("harness", "test", f"attempt{attempt}")
        try:
            code = extract_code(reply, "main")
            if "kernel_function" not in code:
                raise TestRejected("it never imports or calls kernel_function")
            validate_test(code, test_dir, device, timeout_s, cache_dir)
        except (NoCodeInReply, TestRejected) as err:
            previous_problem = str(err)
            rejections.append({"attempt": attempt, "reason": previous_problem})
            continue
        frozen = store.path("harness", "test", "test_kernel.py")
        frozen.write_text(code)
        frozen.chmod(0o444)
        return {
            "mode": "test",
            "test_path": str(frozen),
            "sha256": _sha256(code),
            "device": device,
            "cache_dir": str(cache_dir),
            "validated_against": sorted(WRONG_KERNELS),
            "rejected_tests": rejections,
            "summary": f"LLM-written test, validated against {len(WRONG_KERNELS)} wrong kernels",
        }
    from kernelagent.errors import KernelAgentError

    raise KernelAgentError(
        f"no trustworthy test after {attempts} attempts: "
        + "; ".join(f"attempt {r['attempt']}: {r['reason']}" for r in rejections)
        + ". Add a PyTorch reference to the spec so the product can build the check itself."
    )


def validate_test(code: str, test_dir: Path, device: str, timeout_s: float, cache_dir: Path) -> None:
    for name, body in WRONG_KERNELS.items():
        report, run = run_test(code, _FIRST_TENSOR + body, test_dir / name.replace(" ", "_"), device, timeout_s,
                               cache_dir)
        if report is None:
            raise TestRejected(f"it did not run to completion ({_describe_run(run)})")
        if report["calls"] == 0:
            raise TestRejected(
                "it never called kernel_function: " + (report.get("error") or "no call").strip().splitlines()[-1]
            )
        if report["test_passed"]:
            raise TestRejected(f"it passed a kernel_function that {name}")


def run_test(test_code, kernel_code, workdir, device, timeout_s, cache_dir, *, perturb=False):  # noqa: ANN001, ANN201
    """Runs the test against kernel.py in a sandbox; returns (report or None when it is missing/forged, run)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "kernel.py").write_text(kernel_code)
    (workdir / "test_kernel.py").write_text(test_code)
    nonce = secrets.token_hex(16)
    argv = [sys.executable, "-m", "kernelagent.verify.test_runner", str(workdir.resolve()), nonce]
    with gpu_placement(device) as gpu:
        run = run_sandboxed(
            argv + (["--perturb"] if perturb else []),
            cwd=workdir,
            limits=sandbox_limits(device, timeout_s),
            env=pinned_env(child_env(interpret=device == "cpu", cache_dir=cache_dir), gpu),
        )
    report = read_json(workdir / "report.json")
    if not report or report.get("nonce") != nonce or report.get("phase") != "done":
        return None, run
    return report, run


def verify_test_candidate(code: str, harness: dict, workdir: Path, *, timeout_s: float) -> V.Verdict:
    started = time.perf_counter()
    verdict = static_checks(code, "kernel_function") or _run_candidate(code, harness, workdir, timeout_s)
    verdict["wall_s"] = round(time.perf_counter() - started, 3)
    return verdict


def _run_candidate(code: str, harness: dict, workdir: Path, timeout_s: float) -> V.Verdict:
    test_code = Path(harness["test_path"]).read_text()
    if _sha256(test_code) != harness["sha256"]:
        raise RuntimeError(f"the frozen test {harness['test_path']} changed since it was validated")
    device, cache_dir = harness["device"], Path(harness["cache_dir"])
    report, run = run_test(test_code, code, workdir, device, timeout_s, cache_dir)
    if run.timed_out:
        return V.failed(V.TIMEOUT, f"the test did not finish within {timeout_s:g}s")
    if run.memory_exceeded:
        return V.failed(V.RESOURCE_LIMIT, "used more than the host-memory limit (whole process tree); killed")
    if report is None:
        return V.failed(V.TAMPER if run.returncode == 0 else V.RUNTIME_ERROR, _describe_run(run), run.tail(2000))
    if report["compute_ops"]:
        return V.failed(
            V.POLICY_VIOLATION,
            "PyTorch compute ran outside Triton kernels: " + ", ".join(report["compute_ops"][:8]),
            rule="runtime_torch_compute",
        )
    if not report["test_passed"]:
        error = report.get("error") or "the test failed"
        last_line = error.strip().splitlines()[-1]
        return V.failed(_test_failure_class(error, last_line), last_line[:300], error[-2500:])
    if report["launches"] == 0:
        return V.failed(V.POLICY_VIOLATION, "kernel_function launched no Triton kernel", rule="runtime_no_triton_launch")
    # The test passed: check that it would have noticed a 1% error in this very output.
    perturbed, _ = run_test(test_code, code, workdir.with_name(workdir.name + "_perturbed"), device, timeout_s,
                            cache_dir, perturb=True)
    sensitive = perturbed is not None and not perturbed["test_passed"]
    return V.passed(
        "the frozen test passed",
        launches=report["launches"],
        calls=report["calls"],
        test_catches_1pct_error=sensitive,
    )


def _test_failure_class(error: str, last_line: str) -> str:
    """A failed assertion or a non-zero exit is the test saying 'wrong answer'; other exceptions are crashes."""
    if "CompilationError" in error:
        return V.COMPILE_ERROR
    if last_line.startswith("AssertionError") or "exited with status" in last_line or "Error" not in last_line:
        return V.NUMERICAL_MISMATCH
    return V.RUNTIME_ERROR


def _describe_run(run) -> str:  # noqa: ANN001
    if run.timed_out:
        return "timed out"
    if run.signal_name:
        return f"killed by {run.signal_name}"
    return f"the process ended (exit code {run.returncode}) without a complete report"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
