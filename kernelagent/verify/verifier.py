"""Judges candidates. Static policy first (cheap, precise reasons), then a sandboxed run judged by the trusted judge.

Reference mode: the harness is built from the user's PyTorch reference (no LLM-written test). A judge process per
reference and GPU (verify/judge.py) owns inputs, expected outputs and the comparison; each candidate runs in its
own sandboxed process and folder, connected to the judge only by a socket on its stdin (verify/judge_client.py).
This module combines the judge's outcome with what the sandbox saw (exit, signal, time, memory) into the verdict.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

from kernelagent.errors import ReferenceError_
from kernelagent.sandbox import (
    SandboxLimits,
    SandboxResult,
    gpu_placement,
    pinned_env,
    run_memory_bytes,
    run_sandboxed,
    run_sandboxed_warm,
    scrubbed_env,
    write_into_candidate_folder,
)
from kernelagent.sandbox.slots import device_failed, device_worked, gpu_facts
from kernelagent.verify import verdict as V
from kernelagent.verify.judge_client import Judge, JudgeError, JudgeGone, forget, judge_for
from kernelagent.verify.judge_client import release as release_judges
from kernelagent.verify.policy import check_policy

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DTYPE_OF_PRECISION = {"bf16": "bfloat16", "fp16": "float16"}


def child_env(*, interpret: bool, cache_dir: Path) -> dict[str, str]:
    """What a verification child may see: the secret-free base environment (PATH, CUDA and library paths, which
    Triton needs to build its launcher), plus where we live, the shared Triton cache, and the interpreter switch."""
    pythonpath = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    extra = {
        "PYTHONPATH": pythonpath,
        "TRITON_CACHE_DIR": str(Path(cache_dir).resolve()),
        "PYTHONDONTWRITEBYTECODE": "1",
        # One CPU thread: a candidate's work is on the device, and torch's OpenMP pool (started by a large
        # nn.Linear's CPU initialisation: 31 threads on a 32-core H200 host) read as threads the candidate left.
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    if interpret:
        extra["TRITON_INTERPRET"] = "1"
    return scrubbed_env(extra)


def sandbox_runner(harness: dict):  # noqa: ANN201 - run_sandboxed or its warm twin
    """Warm forked workers by default (same isolation, no torch/triton import per candidate); cold on request."""
    return runner_for(warm=harness.get("warm", True))


def runner_for(*, warm: bool):  # noqa: ANN201
    return run_sandboxed_warm if warm else run_sandboxed


def host_memory_limit() -> int:
    """The host-memory watchdog's limit in bytes (SandboxLimits.rss_bytes) for verification children: a share of this
    host's memory (sandbox.sizing.run_memory_bytes); KERNELAGENT_HOST_MEMORY_GB overrides it."""
    override = os.environ.get("KERNELAGENT_HOST_MEMORY_GB")
    return int(float(override) * 1024**3) if override else run_memory_bytes()


def sandbox_limits(device: str, timeout_s: float, *, host_memory_bytes: int | None = None) -> SandboxLimits:
    """CUDA maps a very large virtual address space, so RLIMIT_AS only guards CPU (interpreter) runs; the resident-
    memory watchdog guards both, which is what stops a GPU candidate filling the host's RAM."""
    return SandboxLimits(
        timeout_s=timeout_s,
        memory_bytes=8 * 1024**3,
        apply_memory_limit=device == "cpu",
        rss_bytes=host_memory_bytes or host_memory_limit(),
        confine_filesystem=confines_filesystem(device),
        gpu=device == "cuda",
        unprivileged=device != "cuda",  # also what SandboxLimits decides alone: explicit here, where the device is known
    )


# GPU confinement: Landlock with what CUDA needs (sandbox/filesystem.gpu_rules), on by default since the H200 probe
# (benchmarks/cuda_confinement_probe.py) passed all three steps on 2026-11-30 06:02 (nvidia-h200-x2, Landlock ABI 7,
# benchmarks/cuda-confinement-probe-h200.json): a confined candidate initialises CUDA, builds and launches a Triton
# kernel and maps the judge's IPC loans, also under an unprivileged uid of its own. What it took, each found by an
# earlier probe: the run's own /proc/self/task (cuInit names its threads, else error 304), the image's $CC script with
# the gcc-real and -B folders it runs, TRITON_LIBCUDA_PATH instead of ldconfig, and a REFER right in every Landlock
# layer (Triton's cache moves each built file up a folder; EXDEV otherwise). The escape corpus on the H200, confined:
# 15 of 18 contained (docs/sandbox-gpu.md); unconfined it was 7 of 18. If a GPU image breaks it, the probe says which
# step: KERNELAGENT_GPU_CONFINED=0 switches it off for one process, and verdicts then record why (below).
GPU_CONFINED = os.environ.get("KERNELAGENT_GPU_CONFINED", "1") == "1"
GPU_UNCONFINED_BECAUSE = "" if GPU_CONFINED else "switched off for this process (KERNELAGENT_GPU_CONFINED=0)"
# GPU candidates keep the judge's uid: legacy CUDA IPC (how the judge lends tensors, verify/wire.py) fails between
# different uids (measured on the H200), and the judge is started as the agent's uid (verify/judge_client.py).
GPU_SAME_UID_BECAUSE = "legacy CUDA IPC (the judge's tensor loans) fails between uids; the judge runs as the agent"


def confines_filesystem(device: str) -> bool:
    """Landlock confinement for every candidate run; on the GPU unless switched off above (GPU_CONFINED). The H100
    machine's CUDA once failed to initialise under the CPU rules (error 304), which lacked the driver's nodes."""
    return device != "cuda" or GPU_CONFINED


def triton_cache_dir(runs_dir: Path) -> Path:
    """One compile cache for every candidate and run, so identical kernels compile once."""
    path = Path(os.environ.get("KERNELAGENT_TRITON_CACHE", Path(runs_dir) / ".triton-cache")).resolve()
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
    seed: int | None = None,
    timeout_s: float,
    cache_dir: Path,
    warm: bool = True,
    extra_draws: bool = True,
) -> dict:
    """Starts the judge for this reference (it builds the model and checks a first draw) and returns the harness
    description kept in state: enough for any process, here or on a Ray worker, to start an identical judge.

    `seed` is accepted for old callers and ignored: every draw's seed is fresh and unpredictable now."""
    del seed
    ref_dir = Path(harness_dir) / "reference"
    ref_dir.mkdir(parents=True, exist_ok=True)
    ref_dir = ref_dir.resolve()
    problem_path = ref_dir / "problem.py"
    problem_path.write_text(reference_source)
    config = {
        "problem_path": str(problem_path.resolve()),
        "device": device,
        "draws": draws,
        "sizes": dict(sizes),
        "precision": precision,
        "extra_draws": extra_draws,
    }
    with gpu_placement(device) as gpu:  # "auto" takes a slot too; where no GPU is known it yields None
        judge = _judge(config, ref_dir, cache_dir, gpu, timeout_s)
    facts = judge.facts
    return {
        "mode": "reference",
        "dir": str(ref_dir),
        "cache_dir": str(cache_dir),
        "judge": config | {"device": facts["device"]},
        "draws": draws,
        "plan": facts["plan"],
        "device": facts["device"],
        "dtype": DTYPE_OF_PRECISION.get(precision),
        "sizes_overridden": facts["sizes_overridden"],
        "warnings": facts["warnings"],
        "gpu_memory_bytes": gpu_memory_cap(facts.get("peak_memory_bytes")),
        "prepare_s": facts["prepare_s"],
        "reference_forward_s": facts.get("reference_forward_s"),
        "inputs": facts["inputs"],
        "outputs": facts["outputs"],
        "warm": warm,
    }


def judge_of(harness: dict, gpu: str | None, timeout_s: float) -> Judge:
    """The judge of this harness on this GPU (started here if this process has none yet)."""
    return _judge(harness["judge"], Path(harness["dir"]), Path(harness["cache_dir"]), gpu, timeout_s)


def release(harness: dict) -> None:
    """A run is over: its judges (one per GPU it used) end now rather than with the process (suites run many)."""
    if harness.get("mode") == "reference" and "judge" in harness:
        release_judges(harness["judge"])


def _judge(config: dict, ref_dir: Path, cache_dir: Path, gpu: str | None, timeout_s: float) -> Judge:
    # The user's own reference runs in the judge: not confined like a candidate, but without our secrets.
    env = pinned_env(child_env(interpret=False, cache_dir=Path(cache_dir)), gpu)
    return judge_for(config, workdir=ref_dir, env=env, gpu=gpu, ready_timeout_s=timeout_s)


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
        verdict = judge_without_policy(
            code, harness, Path(workdir), timeout_s=timeout_s, tf32=tf32, rtol=rtol, atol=atol
        )
    verdict["wall_s"] = round(time.perf_counter() - started, 3)
    return verdict


def judge_without_policy(code: str, harness: dict, workdir: Path, *, timeout_s: float, **options: object) -> V.Verdict:
    """The sandboxed, judged run alone, without the static policy: what verify_reference_candidate does after the
    policy passed, and what attack corpora and benchmarks use to test the judge on its own. `options` are the judge
    session's (tf32, rtol, atol; a benchmark's guard="record")."""
    session = {"entry": "ModelNew", "dtype": harness.get("dtype"), "gpu_memory_bytes": harness.get("gpu_memory_bytes")}
    return _run_judged(code, harness, Path(workdir), timeout_s, session | options)


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


def _run_judged(code: str, harness: dict, workdir: Path, timeout_s: float, options: dict) -> V.Verdict:
    """One sandboxed run of the candidate, judged; a judge that died is replaced once (it is ours, not theirs)."""
    _stage_workdir(code, workdir)
    limits = sandbox_limits(harness["device"], timeout_s)
    env = child_env(interpret=harness["device"] == "cpu", cache_dir=Path(harness["cache_dir"]))
    runner = sandbox_runner(harness)
    judges_lost = 0
    for attempt in range(3):
        # The slot is held while the candidate runs; its judge lives on that same GPU (CUDA IPC is per device).
        with gpu_placement(harness["device"]) as gpu:
            try:
                judge = judge_of(harness, gpu, timeout_s)
            except ReferenceError_ as err:  # prepared once already: the GPU failed (gone, full), not the reference
                if gpu is None or attempt == 2:
                    raise
                device_failed(gpu, str(err)[:300])  # twice in a row: the GPU takes no more runs; try another
                continue

            def run(stdin_fd: int) -> SandboxResult:
                return runner(
                    [sys.executable, "-m", "kernelagent.verify.candidate_runner", str(workdir.resolve())],
                    cwd=workdir,
                    limits=limits,
                    env=pinned_env(env, gpu),
                    stdin_fd=stdin_fd,
                )

            try:
                outcome, result = judge.session(options, run)
                if outcome.get("judge_error") and attempt < 2:  # e.g. out of GPU memory beside other judges
                    raise JudgeError(outcome["judge_error"])
                device_worked(gpu)
                break
            except JudgeError as err:
                forget(judge)
                if isinstance(err, JudgeGone):
                    # A judge that ends while a candidate runs was most likely ended by it (on the GPU, where the
                    # candidate keeps the judge's uid, a signal reaches it): once may be ours, twice fails the
                    # candidate. Never a device failure: a candidate must not retire the host's GPUs.
                    judges_lost += 1
                    if judges_lost < 2:
                        continue
                    reduce_to_evidence(workdir, code)
                    return V.failed(V.TAMPER, f"the judge process ended twice while this candidate ran ({err})",
                                    **gpu_facts(gpu))
                if attempt == 2 or not device_trouble(str(err)):
                    raise  # the reference's own error (its code, its dtypes) fails the same on every GPU
                device_failed(gpu, str(err)[:300])  # the next attempt prefers another GPU
    else:
        raise JudgeError("no judge lasted through this candidate's run (a device failure, then the judge ended)")
    reduce_to_evidence(workdir, code)
    write_into_candidate_folder(
        workdir / "sandbox.log",
        f"exit={result.returncode} signal={result.signal_name}\n{result.stdout}\n{result.stderr}",
    )
    verdict = verdict_of(outcome, result, timeout_s, limits)
    verdict["details"].update(_sandbox_facts(result, outcome, gpu, harness["device"]))
    return verdict


_DEVICE_TROUBLE = re.compile(r"CUDA|cuda|cuInit|Accelerator|OutOfMemory|out of memory|device-side|ECC|Xid|NCCL")


def device_trouble(error: str) -> bool:
    """Whether a judge's reported failure names the device (CUDA errors, out of memory), which another GPU may not
    share; a Python error of the reference fails the same everywhere and must not retire a GPU."""
    return _DEVICE_TROUBLE.search(error) is not None


def reduce_to_evidence(workdir: Path, code: str) -> None:
    """Once judged, a candidate's folder keeps its code (as judged, rewritten: the candidate could change its copy)
    and the sandbox log: whatever else it wrote (caches, files meant to fill the disk or persist) goes."""
    for entry in workdir.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    write_into_candidate_folder(workdir / "candidate.py", code)


def _sandbox_facts(run: SandboxResult, outcome: dict, gpu: str | None, device: str = "cpu") -> dict:
    confinement = dict(run.confinement)
    if device == "cuda":
        if not GPU_CONFINED:
            confinement["filesystem_note"] = f"GPU confinement switched off: {GPU_UNCONFINED_BECAUSE}"
        confinement["uid_note"] = f"not dropped on the GPU: {GPU_SAME_UID_BECAUSE}"
    return {
        "confinement": confinement,
        "returncode": run.returncode,
        "signal": run.signal_name,
        "leftovers_killed": run.leftovers_killed,
        "network_isolated": run.network_isolated,
        "filesystem_confined": run.filesystem_confined,
        "import_s": outcome.get("import_s"),
        "build_s": outcome.get("build_s"),
        "draws_judged": outcome.get("draws_judged"),
        "draws_planned": outcome.get("draws_planned"),
        **({"skipped_draws": outcome["skipped"]} if outcome.get("skipped") else {}),
        "rss_peak_bytes": run.rss_peak_bytes,
        "disk_exceeded": run.disk_exceeded,
        "tasks_exceeded": run.tasks_exceeded,
        "folder_peak_bytes": run.confinement.get("folder_peak_bytes"),
        **gpu_facts(gpu),  # the slot's id and, where nvidia-smi knows it, the physical GPU's index, UUID, name
    }


def _stage_workdir(code: str, workdir: Path) -> None:
    """The candidate's folder gets its code and nothing else: state and inputs come from the judge, lent."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / "candidate.py").write_text(code)


def verdict_of(outcome: dict, run: SandboxResult, timeout_s: float, limits: SandboxLimits | None = None) -> V.Verdict:
    """The verdict from the judge's outcome and the sandbox's facts. Only the judge can pass a candidate, and only
    when it judged every planned draw; the process's exit status and anything it printed prove nothing."""
    if outcome.get("judge_error"):
        raise JudgeError(f"the judge failed while judging: {outcome['judge_error']}")
    verdict = outcome.get("verdict")
    if verdict is not None and not verdict.get("passed"):
        return verdict  # a mismatch or guard finding is the answer, even if the process was then killed
    if run.memory_exceeded:  # the kill may have cut the session short in any phase
        limit = f"{limits.rss_bytes / 1024**3:g} GiB" if limits and limits.rss_bytes else "the limit"
        return V.failed(
            V.RESOURCE_LIMIT,
            f"used more than {limit} of host memory (resident, whole process tree); killed",
            run.tail(1500),
        )
    if run.tasks_exceeded:
        return V.failed(V.RESOURCE_LIMIT, "ran more processes and threads than a run may; killed", run.tail(1500))
    if run.disk_exceeded:
        limit = f"{limits.folder_bytes / 1024**2:g} MiB" if limits and limits.folder_bytes else "its quota"
        return V.failed(V.RESOURCE_LIMIT, f"wrote more than {limit} into its folder; killed", run.tail(1500))
    if run.timed_out:
        return V.failed(V.TIMEOUT, f"did not finish within {timeout_s:g}s (phase: {outcome.get('phase', 'start')})")
    error = outcome.get("error")
    if error:
        return _candidate_error(error, outcome.get("phase"))
    if verdict is not None and outcome.get("draws_judged") == outcome.get("draws_planned"):
        return verdict
    if run.signal_name:
        return V.failed(V.RUNTIME_ERROR, f"the process was killed by {run.signal_name}", run.tail(2000))
    return V.failed(
        V.TAMPER,
        f"the process ended (exit code {run.returncode}) before the judge finished (phase {outcome.get('phase')}, "
        f"{outcome.get('draws_judged', 0)} of {outcome.get('draws_planned')} draws judged)",
        run.tail(1500),
    )


_ERROR_CLASSES = {
    "syntax_error": V.SYNTAX_ERROR,
    "interface_error": V.INTERFACE_ERROR,
    "resource_limit": V.RESOURCE_LIMIT,
    "compile_error": V.COMPILE_ERROR,
}


def _candidate_error(error: dict, phase: str | None) -> V.Verdict:
    kind = error.get("kind")
    if kind == "exit":
        return V.failed(V.TAMPER, "the candidate tried to exit the process (SystemExit) before verification ended")
    if kind == "refused":
        return V.failed(
            V.POLICY_VIOLATION,
            f"the candidate's process tried what it may not: {error.get('message', '')[:300]}",
            error.get("traceback", ""),
            rule="runtime_refused",
        )
    if kind == "interpreter_unsupported" and hasattr(V, "INTERPRETER_UNSUPPORTED"):
        return V.failed(
            V.INTERPRETER_UNSUPPORTED,
            f"the Triton CPU interpreter cannot run this: {error.get('feature')}",
            error.get("traceback", ""),
            feature=error.get("feature"),
        )
    where = "while importing" if phase == "import" else "while building ModelNew" if phase == "build" else "in forward"
    failure_class = _ERROR_CLASSES.get(kind, V.RUNTIME_ERROR)
    return V.failed(
        failure_class, f"{error.get('type')} {where}: {error.get('message', '')[:300]}", error.get("traceback", "")
    )
