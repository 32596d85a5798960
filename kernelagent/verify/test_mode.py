"""Specs without a PyTorch reference: an LLM-written test decides, but only after it proved it can say no.

A generated test is validated against deliberately wrong kernels (zeros, the input unchanged, a wrong shape, None,
zeroed inputs); a test that lets one of them pass is rejected and regenerated. The accepted test is frozen by hash.
Each check runs it in a test process that never imports the candidate (verify/test_runner.py), against a kernel
process that serves kernel_function (verify/kernel_server.py); the verdict comes from the test process only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from kernelagent.llm.client import LLMSettings
from kernelagent.llm.extract import NoCodeInReply, extract_code
from kernelagent.llm.recorded import ask_recorded
from kernelagent.prompting import render
from kernelagent.runs.store import RunStore
from kernelagent.sandbox import SandboxResult, gpu_placement, pinned_env, write_into_candidate_folder
from kernelagent.verify import verdict as V
from kernelagent.verify import verifier, wire
from kernelagent.verify.verifier import _candidate_error, child_env, sandbox_limits, static_checks

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
    # What it writes into its arguments reaches the test (in-place and out= kernels need that), so a test that
    # computes the expected result from the inputs after the call could be fooled by zeroing them.
    "zeroes its inputs and returns zeros": (
        "def kernel_function(*args, **kwargs):\n"
        "    out = torch.zeros_like(_first_tensor(args, kwargs))\n"
        "    for value in list(args) + list(kwargs.values()):\n"
        "        if isinstance(value, torch.Tensor):\n"
        "            value.zero_()\n"
        "    return out\n"
    ),
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
    warm: bool = True,
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
            validate_test(code, test_dir, device, timeout_s, cache_dir, warm)
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
            "warm": warm,
            "rejected_tests": rejections,
            "summary": f"LLM-written test, validated against {len(WRONG_KERNELS)} wrong kernels",
        }
    from kernelagent.errors import NoTrustworthyTest

    raise NoTrustworthyTest(
        f"no trustworthy test after {attempts} attempts: "
        + "; ".join(f"attempt {r['attempt']}: {r['reason']}" for r in rejections)
        + ". Add a PyTorch reference to the spec so the product can build the check itself."
    )


def validate_test(code: str, test_dir: Path, device: str, timeout_s: float, cache_dir: Path, warm: bool = True) -> None:
    for name, body in WRONG_KERNELS.items():
        check = run_test(
            code, _FIRST_TENSOR + body, test_dir / name.replace(" ", "_"), device, timeout_s, cache_dir, warm=warm
        )
        report = check.report
        if report is None:
            raise TestRejected(f"it did not run to completion ({_describe_run(check.test_run)})")
        if report["calls"] == 0:
            raise TestRejected(
                "it never called kernel_function: " + (report.get("error") or "no call").strip().splitlines()[-1]
            )
        if report["test_passed"]:
            raise TestRejected(f"it passed a kernel_function that {name}")


@dataclass
class TestCheck:
    """One run of the frozen test against one kernel.py: the test process's verdict (None when it sent none) and
    what the sandbox saw of both processes."""

    report: dict | None
    test_run: SandboxResult
    kernel_run: SandboxResult
    gpu: str | None


def run_test(  # noqa: PLR0913
    test_code: str,
    kernel_code: str,
    workdir: Path,
    device: str,
    timeout_s: float,
    cache_dir: Path,
    *,
    perturb: bool = False,
    warm: bool = True,
) -> TestCheck:
    """Runs the test against kernel.py as two sandboxed processes: the test process (the test, with kernel_function
    a proxy) and the kernel process (kernel.py under the runtime guard), joined by a socket pair made here. The
    verdict comes back over the test process's own socket, which the kernel process never holds."""
    test_dir, kernel_dir = _stage(workdir, test_code, kernel_code)
    runner = verifier.runner_for(warm=warm)
    limits = sandbox_limits(device, timeout_s)
    agent_end, test_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    test_to_kernel, kernel_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with gpu_placement(device) as gpu:
        env = pinned_env(child_env(interpret=device == "cpu", cache_dir=cache_dir), gpu)

        def run(module: str, folder: Path, stdin: socket.socket, *args: str) -> SandboxResult:
            """One process with `stdin` as its standard input; our copy is closed once the process tree is dead,
            so that its peer reads EOF."""
            argv = [sys.executable, "-m", f"kernelagent.verify.{module}", str(folder.resolve()), *args]
            # The test process lends the kernel process its tensors as memfds (call_wire): it may create them.
            own = replace(limits, lends_memory=True) if module == "test_runner" else limits
            try:
                return runner(argv, cwd=folder, limits=own, env=env, stdin_fd=stdin.fileno())
            finally:
                stdin.close()

        kernel = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-process")
        try:
            try:
                init = {"event": "init", "test_code": test_code, "perturb": perturb}
                wire.send(agent_end, init, [test_to_kernel.fileno()])
            finally:
                test_to_kernel.close()  # the test process's end travels inside the init message
            kernel_future = kernel.submit(run, "kernel_server", kernel_dir, kernel_end, device)
            test_run = run("test_runner", test_dir, test_end)
            report = _read_verdict(agent_end)
        finally:
            # Once the test process and the message that carried its end are gone, the kernel process reads EOF.
            agent_end.close()
            test_end.close()
            kernel.shutdown(wait=True)
            kernel_end.close()
        kernel_run = kernel_future.result()
    write_into_candidate_folder(
        Path(workdir) / "sandbox.log",
        "\n".join(
            f"--- {name}: exit={run.returncode} signal={run.signal_name}\n{run.stdout}\n{run.stderr}"
            for name, run in (("test process", test_run), ("kernel process", kernel_run))
        ),
    )
    return TestCheck(report, test_run, kernel_run, gpu)


def _stage(workdir: Path, test_code: str, kernel_code: str) -> tuple[Path, Path]:
    """Separate folders: the kernel process's holds kernel.py only; the test's holds a copy of the test for
    tracebacks (the test process runs the source it was sent, never a file a candidate could have changed)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    test_dir, kernel_dir = workdir / "test", workdir / "kernel"
    test_dir.mkdir(parents=True)
    kernel_dir.mkdir()
    (kernel_dir / "kernel.py").write_text(kernel_code)
    (test_dir / "test_kernel.py").write_text(test_code)
    return test_dir, kernel_dir


def _read_verdict(sock: socket.socket) -> dict | None:
    """The test process's one message, sent before it exited; None if it sent none or something else."""
    try:
        message, fds = wire.receive(sock, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES, deadline=time.monotonic() + 5)
    except (wire.WireError, OSError):  # OSError: reset, when it died with our message unread
        return None
    for fd in fds:
        os.close(fd)
    if message.get("event") != "verdict" or type(message.get("calls")) is not int:
        return None
    return message


def verify_test_candidate(code: str, harness: dict, workdir: Path, *, timeout_s: float) -> V.Verdict:
    started = time.perf_counter()
    verdict = static_checks(code, "kernel_function") or _run_candidate(code, harness, workdir, timeout_s)
    verdict["wall_s"] = round(time.perf_counter() - started, 3)
    return verdict


def _run_candidate(code: str, harness: dict, workdir: Path, timeout_s: float) -> V.Verdict:
    test_code = Path(harness["test_path"]).read_text()
    if _sha256(test_code) != harness["sha256"]:
        raise RuntimeError(f"the frozen test {harness['test_path']} changed since it was validated")
    device, cache_dir, warm = harness["device"], Path(harness["cache_dir"]), harness.get("warm", True)
    check = run_test(test_code, code, workdir, device, timeout_s, cache_dir, warm=warm)
    verdict = verdict_of(check, timeout_s)
    if verdict["passed"]:
        # The test passed: would it have noticed a 1% error in this very output?
        perturbed = run_test(
            test_code,
            code,
            workdir.with_name(workdir.name + "_perturbed"),
            device,
            timeout_s,
            cache_dir,
            perturb=True,
            warm=warm,
        )
        verdict["details"]["test_catches_1pct_error"] = (
            perturbed.report is not None and perturbed.report["calls"] > 0 and not perturbed.report["test_passed"]
        )
    verdict["details"].update(_sandbox_facts(check))
    return verdict


def verdict_of(check: TestCheck, timeout_s: float) -> V.Verdict:  # noqa: C901, PLR0911 - one rule per line
    """Only the test process's verdict can pass a candidate; the kernel process's guard, exit and timing can fail it."""
    report, test_run, kernel_run = check.report, check.test_run, check.kernel_run
    if test_run.memory_exceeded or kernel_run.memory_exceeded:
        return V.failed(V.RESOURCE_LIMIT, "used more than the host-memory limit (whole process tree); killed")
    timed_out = test_run.timed_out or kernel_run.timed_out
    if report is None:
        if timed_out:
            return V.failed(V.TIMEOUT, f"the test did not finish within {timeout_s:g}s")
        return V.failed(
            V.RUNTIME_ERROR, f"the test process gave no verdict ({_describe_run(test_run)})", test_run.tail(2000)
        )
    misconduct = report.get("kernel_misconduct")
    if misconduct:
        return _candidate_error(misconduct, misconduct.get("phase"))
    failure = _guard_failure(report)
    if failure is not None:
        return failure
    kernel_error = report.get("kernel_error")
    if kernel_error and kernel_error.get("phase") == "import":
        return _candidate_error(kernel_error, "import")
    if report.get("channel"):
        if timed_out:
            return V.failed(V.TIMEOUT, f"the test did not finish within {timeout_s:g}s")
        if kernel_run.signal_name:
            return V.failed(
                V.RUNTIME_ERROR, f"the kernel process was killed by {kernel_run.signal_name}", kernel_run.tail(2000)
            )
        return V.failed(
            V.TAMPER,
            f"{str(report['channel'])[:200]} (exit code {kernel_run.returncode}) before the test finished",
            kernel_run.tail(1500),
        )
    if timed_out:
        return V.failed(V.TIMEOUT, f"the test did not finish within {timeout_s:g}s")
    if not report["test_passed"]:
        if kernel_error:
            return _candidate_error(kernel_error, kernel_error.get("phase"))
        error = str(report.get("error") or "the test failed")
        last_line = error.strip().splitlines()[-1]
        return V.failed(_test_failure_class(error, last_line), last_line[:300], error[-2500:])
    if report["calls"] == 0:
        return V.failed(V.RUNTIME_ERROR, "the test passed without calling kernel_function")
    if _count(report.get("launches")) == 0:
        return V.failed(
            V.POLICY_VIOLATION, "kernel_function launched no Triton kernel", rule="runtime_no_triton_launch"
        )
    if report.get("answered_to_the_end") is not True:
        return V.failed(V.TAMPER, "the kernel process did not answer after the test finished")
    return V.passed(
        "the frozen test passed",
        launches=report["launches"],
        calls=report["calls"],
        mutated_args=_count(report.get("mutated_args")),
    )


def _guard_failure(report: dict) -> V.Verdict | None:
    """What the runtime guard in the kernel process saw (best effort: it runs beside the candidate's code)."""
    refusals = [str(r)[:200] for r in report.get("refusals") or []]
    if refusals:
        return V.failed(
            V.POLICY_VIOLATION,
            f"the candidate's process tried what it may not: {', '.join(refusals[:4])}",
            rule="runtime_refused",
        )
    ops = [str(op)[:120] for op in (report.get("compute_ops") or report.get("streamed_ops") or [])]
    if ops:
        return V.failed(
            V.POLICY_VIOLATION,
            "PyTorch compute ran outside Triton kernels: " + ", ".join(ops[:8]),
            "All arithmetic must happen inside @triton.jit kernels; the wrapper may only allocate, view and launch.",
            rule="runtime_torch_compute",
        )
    if report.get("mode_lost"):
        return V.failed(V.TAMPER, f"the runtime guard was switched off or displaced ({str(report['mode_lost'])[:40]})")
    if report.get("threads"):
        return V.failed(
            V.POLICY_VIOLATION, f"the candidate started threads ({str(report['threads'])[:40]})", rule="runtime_threads"
        )
    return None


def _sandbox_facts(check: TestCheck) -> dict:
    return {
        "returncode": check.kernel_run.returncode,
        "signal": check.kernel_run.signal_name,
        "leftovers_killed": check.kernel_run.leftovers_killed + check.test_run.leftovers_killed,
        "network_isolated": check.kernel_run.network_isolated and check.test_run.network_isolated,
        "filesystem_confined": check.kernel_run.filesystem_confined and check.test_run.filesystem_confined,
        "rss_peak_bytes": check.kernel_run.rss_peak_bytes,
        **({"gpu": check.gpu} if check.gpu is not None else {}),
    }


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


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
