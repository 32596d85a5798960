"""Honest GPU timing of the reference and of verified candidates, each run in a sandboxed child process.

On a CPU harness nothing is timed: the Triton interpreter's times say nothing about speed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from kernelagent.runs.store import write_json
from kernelagent.sandbox import SandboxLimits, gpu_placement, pinned_env, scrubbed_env, write_into_candidate_folder
from kernelagent.sandbox.slots import gpu_facts
from kernelagent.verify.verifier import child_env, confines_filesystem, judge_of, sandbox_runner, static_checks

SKIPPED = {"skipped": "timing needs a CUDA GPU; interpreter times are not speed"}
# do_bench's defaults, with a floor of 20 repetitions so that a slow kernel still gets a median worth the name.
BENCH = {"warmup_ms": 25, "rep_ms": 100, "min_reps": 20, "max_reps": 2000}
MAX_RESTARTS = 8  # a batch whose candidates keep crashing the CUDA context gives up after this many new processes
CANDIDATE_TIMEOUT_S = 180  # one candidate's compile + timing; a hang past this costs only that candidate


def time_reference(harness: dict, workdir: Path, *, timeout_s: float = 600) -> dict:
    """Eager and torch.compile times of the reference on inputs_0, with the bytes and FLOPs the roofline needs.

    {"eager_ms", "compile_ms" (None if torch.compile failed), "compile_error", "bytes", "flops", "dtype", "gpu"},
    {"error": ...} if the reference could not be timed, or the skipped marker on a CPU harness.
    """
    if harness.get("device") != "cuda":
        return dict(SKIPPED)
    workdir = _stage(harness, Path(workdir))
    shutil.copy(Path(harness["dir"]) / "problem.py", workdir / "problem.py")
    report, failure = _run_child(workdir, {"mode": "reference", **_config(harness)}, harness, timeout_s)
    if failure or report.get("fatal"):
        return {"error": failure or report["fatal"]}
    ref = report["reference"]
    compiled = ref.get("compile", {})
    return {
        "eager_ms": ref["eager"]["ms"],
        "eager_p20_ms": ref["eager"]["p20_ms"],
        "eager_p80_ms": ref["eager"]["p80_ms"],
        "compile_ms": compiled.get("ms"),
        "compile_error": compiled.get("error"),
        "compile_s": compiled.get("compile_s"),
        "bytes": ref["bytes"],
        "flops": ref["flops"],
        "flops_source": ref["flops_source"],
        "dtype": ref["dtype"],
        "gpu": report["gpu"],
        "gpu_slot": report.get("gpu_slot"),
        "torch": report["torch"],
    }


def time_candidate(
    code: str, harness: dict, workdir: Path, *, timeout_s: float = 600, crosscheck: bool = False
) -> dict:
    """Median time of an (already verified) ModelNew on inputs_0: {"ms", "p20_ms", "p80_ms", "reps", ...}.

    {"error": ...} if it could not be timed; the skipped marker on a CPU harness. With crosscheck, also
    "cudagraph_ms": triton.testing.do_bench_cudagraph's median for the same forward, in the same process.
    """
    return time_candidates([code], harness, workdir, timeout_s=timeout_s, crosscheck=crosscheck)[0]


def time_candidates(
    codes: list[str],
    harness: dict,
    workdir: Path,
    *,
    timeout_s: float = 600,
    crosscheck: bool = False,
    labels: list[str] | None = None,
    abort_ms: float | None = None,
    abort_factor: float | None = None,
) -> list[dict]:
    """Times several candidates in one child (one import of torch, one CUDA context), in order.

    A candidate that crashes the CUDA context or hangs costs only itself: the child is restarted for the rest.
    abort_ms (or abort_factor times the first candidate's median) stops timing a variant that is clearly slow.
    """
    if harness.get("device") != "cuda":
        return [dict(SKIPPED) for _ in codes]
    workdir = _stage(harness, Path(workdir))
    names, results = [], {}
    for i, code in enumerate(codes):
        name = f"cand_{i:03d}.py"
        names.append(name)
        problem = static_checks(code, "ModelNew")
        if problem is not None:  # variants are rewritten literals of verified code, but never time what fails policy
            results[name] = {"error": f"not timed: {problem['reason']}"}
        else:
            (workdir / name).write_text(code)
    config = {
        "mode": "candidates",
        "crosscheck": crosscheck,
        "abort_ms": abort_ms,
        "abort_factor": abort_factor,
        "candidate_timeout_s": min(CANDIDATE_TIMEOUT_S, timeout_s),
    }
    results.update(_run_batch(workdir, names, results, {**config, **_config(harness)}, harness, timeout_s))
    out = [results[name] for name in names]
    for i, result in enumerate(out):
        result.setdefault("label", labels[i] if labels else names[i])
    return out


def speedups(candidate_ms: float, reference: dict) -> dict:
    """{"speedup_vs_eager", "speedup_vs_compile"} (None where the reference has no such time)."""

    def ratio(ms: float | None) -> float | None:
        return round(ms / candidate_ms, 3) if ms and candidate_ms > 0 else None

    eager, compiled = reference.get("eager_ms"), reference.get("compile_ms")
    return {"speedup_vs_eager": ratio(eager), "speedup_vs_compile": ratio(compiled)}


# ----------------------------------------------------------------------------------------------------------------
# Child runs


def _stage(harness: dict, workdir: Path) -> Path:
    """A fresh folder: the initial state and an input draw are lent by the judge, never the expected outputs."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir


def _config(harness: dict) -> dict:
    # "_test_clock": "host" lets CPU tests drive the child protocol; its numbers are marked and never published.
    clock = harness.get("_test_clock", "cuda")
    return {"dtype": harness.get("dtype"), "clock": clock, "compile": clock == "cuda", **BENCH}


def _run_batch(workdir: Path, names: list[str], done: dict, config: dict, harness: dict, timeout_s: float) -> dict:
    """Runs the child until every candidate has a result, restarting it after a crash or a hang."""
    results: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_RESTARTS + 1):
        pending = [n for n in names if n not in done and n not in results]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        report, failure = _run_child(workdir, {**config, "candidates": pending}, harness, left)
        if report.get("fatal"):
            return {n: {"error": report["fatal"]} for n in pending}
        results.update(report.get("results", {}))
        in_flight = report.get("in_flight")
        if in_flight and in_flight not in results:
            results[in_flight] = {"error": failure or "the timing process ended during this candidate"}
        elif failure and not report.get("results"):
            return {**results, **{n: {"error": failure} for n in pending if n not in results}}
    reason = "not timed: the batch ran out of time or restarts"
    return {**results, **{n: {"error": reason} for n in names if n not in done and n not in results}}


def _run_child(workdir: Path, config: dict, harness: dict, timeout_s: float) -> tuple[dict, str | None]:
    """One child run; returns its report and a one-line failure (None if it exited normally)."""
    (workdir / "report.json").unlink(missing_ok=True)
    write_json(workdir / "config.json", config)
    # A GPU of its own: another candidate beside it would share SMs and memory bandwidth and skew the times.
    with gpu_placement(harness.get("device", "cuda"), exclusive=True) as gpu:
        # Warm like verification unless --cold-workers: a fresh process would pay ~10 s of imports per batch on the
        # GPU machine, and a forked child is as clean for the GPU (it creates its own CUDA context).
        def run_child(stdin_fd: int):  # noqa: ANN202
            return sandbox_runner(harness)(
                [sys.executable, "-m", "kernelagent.bench.timing_runner", str(workdir.resolve())],
                cwd=workdir,
                # CUDA maps a huge virtual address space, so no RLIMIT_AS here (as for GPU verification); the
                # default host-memory watchdog (SandboxLimits.rss_bytes) still applies.
                limits=SandboxLimits(
                    timeout_s=max(1.0, timeout_s),
                    apply_memory_limit=False,
                    confine_filesystem=confines_filesystem(harness.get("device", "cuda")),
                ),
                env=pinned_env(_env(harness), gpu),
                stdin_fd=stdin_fd,
            )

        _outcome, run = judge_of(harness, gpu, timeout_s).session({"kind": "lend"}, run_child)
    write_into_candidate_folder(
        workdir / "sandbox.log", f"exit={run.returncode} signal={run.signal_name}\n{run.stdout}\n{run.stderr}"
    )
    report = _read_report(workdir / "report.json")
    _record_slot(report, gpu)
    if run.timed_out:
        return report, f"timed out after {timeout_s:.0f}s"
    if run.returncode != 0 or run.signal_name:
        return report, f"the timing process failed (exit {run.returncode}, {run.signal_name}): {_last_line(run.stderr)}"
    return report, None


def _read_report(path: Path, limit: int = 1 << 22) -> dict:
    """The timing child's report: a regular file in its folder (never a link it planted), at most 4 MiB."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as report:
        data = report.read(limit + 1)
    try:
        value = json.loads(data) if len(data) <= limit else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _record_slot(report: dict, gpu: str | None) -> None:
    """Every timing result says which GPU produced it (None: not pinned, e.g. no GPU known), and which physical GPU
    that is where nvidia-smi knows it (gpu_index, gpu_uuid, gpu_name)."""
    identity = {key: value for key, value in gpu_facts(gpu).items() if key != "gpu"}
    report["gpu_slot"] = gpu
    for result in (report.get("results") or {}).values():
        if isinstance(result, dict):
            result.update(gpu_slot=gpu, **identity)


def _env(harness: dict) -> dict[str, str]:
    interpret = harness.get("_test_clock") == "host"
    env = scrubbed_env(child_env(interpret=interpret, cache_dir=Path(harness["cache_dir"])))
    # One compile cache for torch.compile across runs, and compilation in-process: no worker pool in the sandbox.
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(harness["cache_dir"]) / "inductor"))
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    return env


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
