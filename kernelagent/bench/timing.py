"""Honest GPU timing of the reference and of verified candidates, each run in a sandboxed child process that the
trusted judge drives and checks (verify/judge_timing.py; docs/timing.md says what is checked and why).

On a CPU harness nothing is timed: the Triton interpreter's times say nothing about speed.
"""

from __future__ import annotations

import random
import shutil
import statistics
import sys
import time
from pathlib import Path

from kernelagent.bench.timing_runner import quantile
from kernelagent.errors import ReferenceError_
from kernelagent.runs.store import write_json
from kernelagent.sandbox import SandboxLimits, gpu_placement, pinned_env, scrubbed_env, write_into_candidate_folder
from kernelagent.sandbox.slots import device_failed, gpu_facts
from kernelagent.verify.verifier import child_env, confines_filesystem, judge_of, sandbox_runner, static_checks

SKIPPED = {"skipped": "timing needs a CUDA GPU; interpreter times are not speed"}
# do_bench's defaults, with a floor of 20 repetitions so that a slow kernel still gets a median worth the name, and
# a cap of 1000: every timed call costs the judge a fresh draw, a reference run and a comparison.
BENCH = {"warmup_ms": 25, "rep_ms": 100, "min_reps": 20, "max_reps": 1000}
# The host clock (CPU tests of the protocol only) times interpreted kernels: fewer calls keep the tests quick.
HOST_BENCH = {"warmup_ms": 0, "rep_ms": 0, "min_reps": 8, "max_reps": 8, "batches": 1}
MAX_RESTARTS = 8  # a batch whose candidates keep crashing the CUDA context gives up after this many new processes
CANDIDATE_TIMEOUT_S = 180  # one candidate's compile + first call; a hang past this costs only that candidate


def time_reference(
    harness: dict, workdir: Path, *, timeout_s: float = 600, max_autotune: bool = False, tf32: bool = False
) -> dict:
    """The user's baselines under the candidates' rules (fresh checked inputs per call, the same flush, the same TF32
    setting): eager, torch.compile default and, with max_autotune, mode="max-autotune" (slow to compile).

    {"eager_ms", "compile_ms" (None if torch.compile failed), "compile_error", "max_autotune_ms", "bytes", "flops",
    "dtype", "tf32", "gpu", ...}, {"error": ...} if the reference could not be timed, or the skipped marker on a CPU
    harness. bytes and FLOPs are the judge's count for the roofline.
    """
    if harness.get("device") != "cuda":
        return dict(SKIPPED)
    workdir = _stage(Path(workdir))
    shutil.copy(Path(harness["dir"]) / "problem.py", workdir / "problem.py")
    host = harness.get("_test_clock") == "host"
    names = ["eager"] if host else ["eager", "compile"] + (["max-autotune"] if max_autotune else [])
    options = {"require_launches": False, "tf32": tf32, "candidate_timeout_s": timeout_s}
    results, outcome = _run_batch(workdir, names, {}, {"mode": "reference", "tf32": tf32}, options, harness, timeout_s)
    eager = results.get("eager", {})
    if "ms" not in eager:
        return {"error": f"the reference could not be timed: {eager.get('error', 'no result')}"}
    compiled, tuned = results.get("compile", {}), results.get("max-autotune", {})
    traffic = outcome.get("traffic", {})
    return {
        "eager_ms": eager["ms"],
        "eager_p20_ms": eager["p20_ms"],
        "eager_p80_ms": eager["p80_ms"],
        "eager_samples_ms": eager.get("samples_ms"),
        "compile_ms": compiled.get("ms"),
        "compile_error": compiled.get("error") or (None if compiled or host else "not timed"),
        "compile_s": compiled.get("first_call_s"),
        "max_autotune_ms": tuned.get("ms"),
        "max_autotune_error": tuned.get("error"),
        "max_autotune_s": tuned.get("first_call_s"),
        "bytes": traffic.get("bytes"),
        "flops": traffic.get("flops"),
        "flops_source": traffic.get("flops_source"),
        "dtype": harness.get("dtype") or traffic.get("dtype"),
        "tf32": tf32,
        "gpu": outcome.get("gpu"),
        "gpu_slot": eager.get("gpu_slot"),
        "torch": outcome.get("torch"),
    }


def time_candidate(
    code: str, harness: dict, workdir: Path, *, timeout_s: float = 600, crosscheck: bool = False
) -> dict:
    """Median time of an (already verified) ModelNew: {"ms", "p20_ms", "p80_ms", "reps", "samples_ms", ...}.

    {"error": ...} if it could not be timed or was rejected ("rejected": the class, "evidence"); the skipped marker
    on a CPU harness. With crosscheck, also "cudagraph_ms": triton.testing.do_bench_cudagraph's median for the same
    forward, in the same process.
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
    rounds: int = 1,
    tf32: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    ceilings: dict | None = None,
    static_policy: bool = True,
) -> list[dict]:
    """Times several candidates, each in a child process of its own (per round), every timed call on fresh inputs
    and checked by the judge.

    rounds > 1 interleaves them: round r times every candidate, in a shuffled order; "rounds_ms" holds each round's
    median, "samples_ms" one figure per checked message (its calls' mean), "ms" the median of all. A candidate that
    crashes the CUDA context, hangs, or tampers with its process costs only itself. abort_ms (or abort_factor
    times the first candidate's estimate) stops timing a variant that is clearly slow. ceilings: the roofline's
    (measured once per GPU when None); a median below its floor is rejected. static_policy=False is for the timing
    attack corpus only (it checks the judge, not the policy).
    """
    if harness.get("device") != "cuda":
        return [dict(SKIPPED) for _ in codes]
    workdir = _stage(Path(workdir))
    names, results = [], {}
    for i, code in enumerate(codes):
        name = f"cand_{i:03d}.py"
        names.append(name)
        problem = static_checks(code, "ModelNew") if static_policy else None
        if problem is not None:  # variants are rewritten literals of verified code, but never time what fails policy
            results[name] = {"error": f"not timed: {problem['reason']}"}
    options = {
        "crosscheck": crosscheck,
        "candidate_timeout_s": min(CANDIDATE_TIMEOUT_S, timeout_s),
        "rounds": 1,
        "tf32": tf32,
        "rtol": rtol,
        "atol": atol,
        "ceilings": ceilings,
        "floor_on_host": bool(harness.get("_floor_on_host")),  # tests only: the floor applied to host-clock figures
    }
    # Each candidate is timed in a process of its own, one per round: candidates sharing a process reached each
    # other (an outside attacker's slow candidate called a rival's built model and was timed at its speed; another
    # slowed or broke its rivals' launches). Rounds interleave the candidates in a fresh shuffled order each.
    deadline = time.monotonic() + timeout_s
    per_round: dict[str, list[dict]] = {name: [] for name in names if name not in results}
    # One GPU for the whole call, held across its processes: figures compared in one call come from one device, and
    # a GPU that fails fails this call's candidates, never moves half of them elsewhere.
    with gpu_placement(harness.get("device", "cuda"), exclusive=True):
        for r in range(max(1, int(rounds))):
            abort_ms = _time_round(r, names, codes, per_round, results, workdir, tf32, options, harness, deadline,
                                   abort_ms, abort_factor)
    for name, rounds_of in per_round.items():
        if name not in results:
            results[name] = _merged(rounds_of)
    out = [results[name] for name in names]
    for i, result in enumerate(out):
        result.setdefault("label", labels[i] if labels else names[i])
    return out


def _time_round(r, names, codes, per_round, results, workdir, tf32, options, harness, deadline, abort_ms,  # noqa: ANN001, ANN202, PLR0913
                abort_factor):
    """Round r: every candidate still in, each in a process of its own, in a shuffled order after the first round.
    Returns the slowness cap (set by the first candidate's first figure when abort_factor is given)."""
    order = [name for name in per_round if name not in results]
    if r:
        random.shuffle(order)
    for name in order:
        left = deadline - time.monotonic()
        if left <= 0:
            results[name] = {"error": "not timed: the batch ran out of time"}
            continue
        folder = _stage(workdir / Path(name).stem / f"round{r}")
        (folder / name).write_text(codes[names.index(name)])
        timed, _outcome = _run_batch(
            folder, [name], {}, {"mode": "candidates", "tf32": tf32}, {**options, "abort_ms": abort_ms}, harness, left
        )
        one = timed[name]
        if "ms" not in one:
            results[name] = one  # rejected or failed in any round: that is its result
            if str(one.get("error", "")).startswith("not timed: GPU"):
                for other in order:  # the call's GPU failed: the rest of this call is not timed elsewhere
                    results.setdefault(other, dict(one))
                return abort_ms
            continue
        per_round[name].append(one)
        if abort_ms is None and abort_factor and name == names[0] and r == 0:
            abort_ms = abort_factor * one["ms"]  # the first candidate (the seed) sets the cap
    return abort_ms


def _merged(rounds_of: list[dict]) -> dict:
    """One result from a candidate's rounds (each in its own process): the figures over every message of every
    round, "rounds_ms" one median per round; the rest (checks, host clock, floor) from its last round."""
    samples = [x for one in rounds_of for x in one.get("samples_ms", [])]
    if len(rounds_of) == 1 or not samples:
        return rounds_of[-1]
    ordered = sorted(samples)
    return {
        **rounds_of[-1],
        "ms": statistics.median(ordered),
        "p20_ms": quantile(ordered, 0.2),
        "p80_ms": quantile(ordered, 0.8),
        "min_ms": ordered[0],
        "reps": sum(one.get("reps", 0) for one in rounds_of),
        "messages": len(samples),
        "samples_ms": samples,
        "rounds_ms": [one["ms"] for one in rounds_of],
        "checked_calls": sum(one.get("checked_calls", 0) for one in rounds_of),
    }


def speedups(candidate_ms: float, reference: dict) -> dict:
    """{"speedup_vs_eager", "speedup_vs_compile"} (None where the reference has no such time)."""

    def ratio(ms: float | None) -> float | None:
        return round(ms / candidate_ms, 3) if ms and candidate_ms > 0 else None

    eager, compiled = reference.get("eager_ms"), reference.get("compile_ms")
    return {"speedup_vs_eager": ratio(eager), "speedup_vs_compile": ratio(compiled)}


# ----------------------------------------------------------------------------------------------------------------
# Child runs: each one judge session ("kind": "time"); results come from the judge, never from the child's files


def _stage(workdir: Path) -> Path:
    """A fresh folder: the initial state and the input slots are lent by the judge, never the expected outputs."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir


def _run_batch(
    workdir: Path, names: list[str], done: dict, config: dict, options: dict, harness: dict, timeout_s: float
) -> tuple[dict, dict]:
    """Runs the child until every candidate has a result, restarting it after a crash, a hang or a tamper.
    Returns (results by name, the last session's outcome)."""
    results: dict[str, dict] = {}
    outcome: dict = {}
    deadline = time.monotonic() + timeout_s
    for _ in range(MAX_RESTARTS + 1):
        pending = [n for n in names if n not in done and n not in results]
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        outcome, failure = _run_child(workdir, {**config, "candidates": pending}, options, harness, left)
        if outcome.get("judge_error"):
            error = f"the judge failed while timing: {str(outcome['judge_error']).splitlines()[0][:300]}"
            return {**results, **{n: {"error": error} for n in pending if n not in results}}, outcome
        got = {n: r for n, r in (outcome.get("results") or {}).items() if n in pending}
        results.update(got)
        culprit = outcome.get("in_flight")
        ended = failure or outcome.get("ended") or "the timing process ended"
        if culprit in pending and culprit not in results:
            results[culprit] = {"error": f"{ended} (during this candidate)"}
        elif not got:
            return {**results, **{n: {"error": ended} for n in pending if n not in results}}, outcome
    reason = "not timed: the batch ran out of time or restarts"
    return {**results, **{n: {"error": reason} for n in names if n not in done and n not in results}}, outcome


def _run_child(workdir: Path, config: dict, options: dict, harness: dict, timeout_s: float) -> tuple[dict, str | None]:
    """One child run, one judge session; returns the judge's outcome and a one-line failure (None if it exited
    normally)."""
    write_json(
        workdir / "config.json",
        {
            **config,
            "clock": _clock(harness),
            "dtype": harness.get("dtype"),
            **BENCH,
            "candidate_timeout_s": options.get("candidate_timeout_s", CANDIDATE_TIMEOUT_S),
        },
    )
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
                    # The user's baselines are the user's own code, like the judge's reference: not confined (with
                    # GPU confinement on, torch.compile could not start its compile workers); candidates always are.
                    confine_filesystem=confines_filesystem(harness.get("device", "cuda"))
                    and config.get("mode") != "reference",
                ),
                env=pinned_env(_env(harness), gpu),
                stdin_fd=stdin_fd,
            )

        bench = HOST_BENCH if _clock(harness) == "host" else BENCH
        session = {
            "kind": "time",
            "clock": _clock(harness),
            "bench": bench,
            "candidates": config["candidates"],
            **options,
            "ceilings": _ceilings(options.get("ceilings"), harness, gpu),
        }
        try:
            judge = judge_of(harness, gpu, timeout_s)
        except ReferenceError_ as err:  # prepared once already: this GPU failed (gone, full), not the reference
            if gpu is None:
                raise
            device_failed(gpu, str(err)[:300])  # twice in a row: the GPU takes no more runs
            return {}, f"not timed: GPU {gpu} failed ({str(err).splitlines()[0][:200]})"
        outcome, run = judge.session(session, run_child)
    write_into_candidate_folder(
        workdir / "sandbox.log", f"exit={run.returncode} signal={run.signal_name}\n{run.stdout}\n{run.stderr}"
    )
    _record_slot(outcome, gpu)
    if run.timed_out:
        return outcome, f"timed out after {timeout_s:.0f}s"
    if run.returncode != 0 or run.signal_name:
        return (
            outcome,
            f"the timing process failed (exit {run.returncode}, {run.signal_name}): {_last_line(run.stderr)}",
        )
    return outcome, None


def _clock(harness: dict) -> str:
    # "_test_clock": "host" lets CPU tests drive the protocol; its numbers are marked and never published.
    return harness.get("_test_clock", "cuda")


def _ceilings(given: dict | None, harness: dict, gpu: str | None) -> dict | None:
    """The roofline's ceilings for the judge's floor check: given, or measured once per GPU (cached) while this GPU
    is ours alone. None where there are none (the host clock, or measuring failed): no floor is applied then."""
    if given is not None or _clock(harness) != "cuda":
        return given
    from kernelagent.bench.roofline import ceilings

    try:
        measured = ceilings(gpu=gpu)
    except Exception:  # noqa: BLE001 - no floor is a weaker check, not a reason to stop timing
        return None
    return measured if "copy_gbps" in measured else None


def _record_slot(outcome: dict, gpu: str | None) -> None:
    """Every timing result says which GPU produced it (None: not pinned, e.g. no GPU known), and which physical GPU
    that is where nvidia-smi knows it (gpu_index, gpu_uuid, gpu_name)."""
    identity = {key: value for key, value in gpu_facts(gpu).items() if key != "gpu"}
    for result in (outcome.get("results") or {}).values():
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
