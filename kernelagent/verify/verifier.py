"""Judges candidates. Static policy first (cheap, precise reasons), then a sandboxed run, then the trusted compare.

Reference mode: the harness is built from the user's PyTorch reference (no LLM-written test). Each candidate runs
in its own process and folder with only the inputs; its outputs come back as files that this process compares
with expected outputs computed earlier by a separate reference process.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import torch

from kernelagent.errors import ReferenceError_
from kernelagent.runs.store import read_json, write_json
from kernelagent.sandbox import (
    SandboxLimits,
    SandboxResult,
    gpu_placement,
    pinned_env,
    run_sandboxed,
    run_sandboxed_warm,
    scrubbed_env,
)
from kernelagent.verify import verdict as V
from kernelagent.verify.compare import compare_outputs
from kernelagent.verify.policy import check_policy

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DTYPE_OF_PRECISION = {"bf16": "bfloat16", "fp16": "float16"}


def child_env(*, interpret: bool, cache_dir: Path) -> dict[str, str]:
    """What a verification child may see: the secret-free base environment (PATH, CUDA and library paths, which
    Triton needs to build its launcher), plus where we live, the shared Triton cache, and the interpreter switch."""
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    extra = {"PYTHONPATH": pythonpath, "TRITON_CACHE_DIR": str(cache_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    if interpret:
        extra["TRITON_INTERPRET"] = "1"
    return scrubbed_env(extra)


def sandbox_runner(harness: dict):  # noqa: ANN201 - run_sandboxed or its warm twin
    """Warm forked workers by default (same isolation, no torch/triton import per candidate); cold on request."""
    return runner_for(warm=harness.get("warm", True))


def runner_for(*, warm: bool):  # noqa: ANN201
    return run_sandboxed_warm if warm else run_sandboxed


# Resident host memory one run's process tree may hold; KERNELAGENT_HOST_MEMORY_GB overrides it. Concurrent runs
# (GPUs x slots per GPU) times this should fit in the host's RAM.
HOST_MEMORY_BYTES = 16 * 1024**3


def host_memory_limit() -> int:
    """The host-memory watchdog's limit in bytes (SandboxLimits.rss_bytes) for verification children."""
    override = os.environ.get("KERNELAGENT_HOST_MEMORY_GB")
    return int(float(override) * 1024**3) if override else HOST_MEMORY_BYTES


def sandbox_limits(device: str, timeout_s: float, *, host_memory_bytes: int | None = None) -> SandboxLimits:
    """CUDA maps a very large virtual address space, so RLIMIT_AS only guards CPU (interpreter) runs; the resident-
    memory watchdog guards both, which is what stops a GPU candidate filling the host's RAM."""
    return SandboxLimits(
        timeout_s=timeout_s,
        memory_bytes=8 * 1024**3,
        apply_memory_limit=device == "cpu",
        rss_bytes=host_memory_bytes or host_memory_limit(),
        confine_filesystem=confines_filesystem(device),
    )


def confines_filesystem(device: str) -> bool:
    """Landlock confinement for CPU runs only: under it the H100 machine's CUDA failed to initialise (cudaGetDeviceCount:
    error 304, "OS call failed"), so GPU runs go unconfined, recorded as filesystem_confined=False in each verdict."""
    return device != "cuda"


def triton_cache_dir(runs_dir: Path) -> Path:
    """One compile cache for every candidate and run, so identical kernels compile once."""
    path = Path(os.environ.get("KERNELAGENT_TRITON_CACHE", Path(runs_dir) / ".triton-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------------------------------
# Reference harness


def prepare_reference(
    *,
    reference_source: str,
    harness_dir: Path,
    device: str,
    draws: int,
    sizes: dict[str, int],
    precision: str,
    seed: int,
    timeout_s: float,
    cache_dir: Path,
    warm: bool = True,
) -> dict:
    """Runs the reference in its own process (forked from the warm pool unless warm is False); returns the harness
    description kept in state."""
    ref_dir = harness_dir / "reference"
    ref_dir.mkdir(parents=True, exist_ok=True)
    (ref_dir / "problem.py").write_text(reference_source)
    config = {
        "problem_path": str((ref_dir / "problem.py").resolve()),
        "out_dir": str(ref_dir.resolve()),
        "device": device,
        "draws": draws,
        "sizes": sizes,
        "precision": precision,
        "seed": seed,
    }
    write_json(ref_dir / "config.json", config)
    with gpu_placement(device) as gpu:  # "auto" takes a slot too; where no GPU is known it yields None
        result = runner_for(warm=warm)(
            [sys.executable, "-m", "kernelagent.verify.reference_runner", str((ref_dir / "config.json").resolve())],
            cwd=ref_dir / "work",
            # The user's own code, which may read its data files: not confined to its folder like a candidate.
            limits=SandboxLimits(
                timeout_s=timeout_s,
                apply_memory_limit=False,
                isolate_network=False,
                confine_filesystem=False,
                rss_bytes=host_memory_limit(),
            ),
            env=pinned_env(child_env(interpret=False, cache_dir=cache_dir), gpu),
        )
    if result.timed_out:
        raise ReferenceError_(f"the PyTorch reference did not finish within {timeout_s:g}s; reduce sizes with --size")
    if result.returncode != 0 or not (ref_dir / "meta.json").exists():
        error = (ref_dir / "error.txt").read_text() if (ref_dir / "error.txt").exists() else result.tail()
        raise ReferenceError_(f"the PyTorch reference failed to run: {error.strip().splitlines()[0]}\n{error[-1500:]}")
    meta = read_json(ref_dir / "meta.json")
    return {
        "mode": "reference",
        "dir": str(ref_dir),
        "cache_dir": str(cache_dir),
        "draws": draws,
        "device": meta["device"],
        "dtype": DTYPE_OF_PRECISION.get(precision),
        "sizes_overridden": meta["sizes_overridden"],
        "warnings": meta["warnings"],
        "gpu_memory_bytes": gpu_memory_cap(meta.get("peak_memory_bytes")),
        "inputs": meta["draws"][0]["inputs"],
        "outputs": meta["draws"][0]["outputs"],
    }


def gpu_memory_cap(reference_peak_bytes: int | None) -> int | None:
    """RLIMIT_AS cannot bound CUDA memory, so the candidate's allocator is capped instead: 4x the reference's peak,
    at least 8 GiB. A kernel that needs more than that for a problem the reference solves is not a good kernel."""
    if reference_peak_bytes is None:
        return None
    return max(8 * 1024**3, 4 * reference_peak_bytes)


def verify_reference_candidate(
    code: str,
    harness: dict,
    workdir: Path,
    *,
    timeout_s: float,
    tf32: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
) -> V.Verdict:
    started = time.perf_counter()
    verdict = static_checks(code, "ModelNew")
    if verdict is None:
        verdict = _run_and_compare(code, harness, workdir, timeout_s, tf32, rtol, atol)
    verdict["wall_s"] = round(time.perf_counter() - started, 3)
    return verdict


def static_checks(code: str, entry: str) -> V.Verdict | None:
    try:
        compile(code, "candidate.py", "exec")
        violations = check_policy(code, entry=entry)
    except SyntaxError as err:
        return V.failed(V.SYNTAX_ERROR, f"line {err.lineno}: {err.msg}", f"{err.text or ''}".rstrip())
    if not violations:
        return None
    evidence = "\n".join(f"line {v.line}: [{v.rule}] {v.message}" for v in violations)
    first = violations[0]
    return V.failed(
        V.POLICY_VIOLATION,
        f"{first.rule} at line {first.line}: {first.message}",
        evidence,
        rule=first.rule,
        rules=sorted({v.rule for v in violations}),
    )


def _run_and_compare(code, harness, workdir, timeout_s, tf32, rtol, atol) -> V.Verdict:  # noqa: ANN001
    ref_dir = Path(harness["dir"])
    _stage_workdir(code, harness, ref_dir, workdir)
    limits = sandbox_limits(harness["device"], timeout_s)
    env = child_env(interpret=harness["device"] == "cpu", cache_dir=Path(harness["cache_dir"]))
    # The slot is held only while the child runs: the comparison below works on CPU copies of the outputs.
    with gpu_placement(harness["device"]) as gpu:
        run = sandbox_runner(harness)(
            [sys.executable, "-m", "kernelagent.verify.candidate_runner", str(workdir.resolve())],
            cwd=workdir,
            limits=limits,
            env=pinned_env(env, gpu),
        )
    (workdir / "sandbox.log").write_text(f"exit={run.returncode} signal={run.signal_name}\n{run.stdout}\n{run.stderr}")
    report = read_json(workdir / "report.json", {}) or {}
    sandbox_facts = {
        "returncode": run.returncode,
        "signal": run.signal_name,
        "leftovers_killed": run.leftovers_killed,
        "network_isolated": run.network_isolated,
        "filesystem_confined": run.filesystem_confined,
        "import_s": report.get("import_s"),
        "rss_peak_bytes": run.rss_peak_bytes,
        **({"gpu": gpu} if gpu is not None else {}),
    }
    problem = _process_failure(run, report, timeout_s, limits)
    if problem is not None:
        problem["details"].update(sandbox_facts)
        return problem
    verdict = _judge_outputs(harness, ref_dir, workdir, report, tf32, rtol, atol)
    verdict["details"].update(sandbox_facts)
    return verdict


def _stage_workdir(code: str, harness: dict, ref_dir: Path, workdir: Path) -> None:
    """The candidate's folder gets its code, the initial state and the inputs: never the expected outputs."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "candidate.py").write_text(code)
    shutil.copy(ref_dir / "init.pt", workdir / "init.pt")
    for k in range(harness["draws"]):
        shutil.copy(ref_dir / f"inputs_{k}.pt", workdir / f"inputs_{k}.pt")
    write_json(
        workdir / "config.json",
        {
            "draws": harness["draws"],
            "device": harness["device"],
            "entry": "ModelNew",
            "dtype": harness.get("dtype"),
            "gpu_memory_bytes": harness.get("gpu_memory_bytes"),
        },
    )


def _process_failure(
    run: SandboxResult, report: dict, timeout_s: float, limits: SandboxLimits | None = None
) -> V.Verdict | None:
    if run.memory_exceeded:  # first: the kill may have cut the report short in any phase
        limit = f"{limits.rss_bytes / 1024**3:g} GiB" if limits and limits.rss_bytes else "the limit"
        return V.failed(
            V.RESOURCE_LIMIT,
            f"used more than {limit} of host memory (resident, whole process tree); killed",
            run.tail(1500),
        )
    if run.timed_out:
        return V.failed(V.TIMEOUT, f"did not finish within {timeout_s:g}s (phase: {report.get('phase', 'start')})")
    error = report.get("error")
    if error:
        kind = error["kind"]
        if kind == "exit":
            return V.failed(V.TAMPER, "the candidate tried to exit the process (SystemExit) before verification ended")
        failure_class = {
            "syntax_error": V.SYNTAX_ERROR,
            "interface_error": V.INTERFACE_ERROR,
            "resource_limit": V.RESOURCE_LIMIT,
            "compile_error": V.COMPILE_ERROR,
        }.get(kind, V.RUNTIME_ERROR)
        where = "while importing" if report.get("phase") == "import" else "in forward"
        return V.failed(failure_class, f"{error['type']} {where}: {error['message'][:300]}", error["traceback"])
    if report.get("tampered"):
        return V.failed(V.TAMPER, "the candidate replaced harness functions: " + ", ".join(report["tampered"]))
    if run.signal_name:
        return V.failed(V.RUNTIME_ERROR, f"the process was killed by {run.signal_name}", run.tail(2000))
    if report.get("phase") != "done":
        # Exit status 0 proves nothing: only a report that reached the end counts.
        return V.failed(
            V.TAMPER,
            f"the process ended (exit code {run.returncode}) before the harness finished (phase "
            f"{report.get('phase', 'none')})",
            run.tail(1500),
        )
    return None


def _judge_outputs(harness, ref_dir, workdir, report, tf32, rtol, atol) -> V.Verdict:  # noqa: ANN001
    launches = sum(d["launches"] for d in report["draws"])
    compute_ops = sorted({op for d in report["draws"] for op in d["compute_ops"]})
    if compute_ops:
        return V.failed(
            V.POLICY_VIOLATION,
            f"PyTorch compute ran outside Triton kernels: {', '.join(compute_ops[:8])}",
            "All arithmetic must happen inside @triton.jit kernels; the wrapper may only allocate, view and launch.",
            rule="runtime_torch_compute",
        )
    if any(d["launches"] == 0 for d in report["draws"]):
        return V.failed(
            V.POLICY_VIOLATION, "forward launched no Triton kernel", rule="runtime_no_triton_launch", launches=launches
        )
    if harness["device"] == "cuda" and any(dev != "cuda:0" for d in report["draws"] for dev in d["output_devices"]):
        return V.failed(V.INTERFACE_ERROR, "outputs must be on the GPU like the reference's")
    worst: dict = {}
    for k in range(harness["draws"]):
        got = torch.load(workdir / f"outputs_{k}.pt", weights_only=True)
        expected = torch.load(ref_dir / f"expected_{k}.pt", weights_only=True)
        comparison = compare_outputs(got, expected, tf32=tf32, rtol=rtol, atol=atol)
        if not comparison.ok:
            failure = V.NUMERICAL_MISMATCH if comparison.kind == "mismatch" else V.INTERFACE_ERROR
            return V.failed(failure, f"input draw {k}: {comparison.message}", comparison.evidence, **comparison.stats)
        for key, value in comparison.stats.items():
            worst[key] = max(worst.get(key, 0.0), value)
    return V.passed(f"matches the reference on {harness['draws']} input draws", launches=launches, **worst)
