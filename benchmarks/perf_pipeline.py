"""Proves the performance library on a GPU: ceilings, reference and seed timings, autotune, roofline, cross-check.

    python benchmarks/perf_pipeline.py                 # on a CUDA machine; logs and results under $OUT (or ./perf-out)
    python benchmarks/perf_pipeline.py --cpu-smoke     # tiny sizes on CPU: verification and rewrites only, no times
    python benchmarks/perf_pipeline.py --recheck sum_all=ITERS=16 --reference sum_all
                                                       # re-verify and re-time recorded configs, no sweep
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelagent.bench import (  # noqa: E402
    apply_label,
    autotune,
    ceilings,
    reference_verifier,
    roofline,
    speedups,
    time_candidates,
    time_reference,
    variants,
)
from kernelagent.verify.verifier import prepare_reference, verify_reference_candidate  # noqa: E402

PROBLEMS_DIR = Path(__file__).resolve().parent / "problems"
MEMORY_TARGET = 0.90  # fraction of measured copy bandwidth
AUTOTUNE_TARGET = 3.0  # small-tiled matmul seed: speed-up from autotuning alone
CROSSCHECK_TOLERANCE = 0.05  # our median vs triton.testing.do_bench_cudagraph on the same kernel


@dataclass
class Problem:
    name: str
    precision: str = "spec"
    smoke_sizes: dict[str, int] = field(default_factory=dict)
    max_variants: int = 24


PROBLEMS = [
    Problem("vector_add", smoke_sizes={"N": 4096}),
    Problem("softmax_rows", smoke_sizes={"ROWS": 32, "COLS": 256}),
    Problem("sum_all", smoke_sizes={"N": 1 << 15}, max_variants=16),
    Problem("linear_bias_relu", precision="fp16", smoke_sizes={"BATCH": 64, "IN_FEATURES": 64, "OUT_FEATURES": 64}),
]


class Log:
    """Everything to a log file; short progress lines to stdout too."""

    def __init__(self, path: Path):
        self.file = path.open("w")
        self.started = time.monotonic()

    def __call__(self, message: str, data: object = None) -> None:
        line = f"[{time.monotonic() - self.started:7.1f}s] {message}"
        print(line, flush=True)
        self.file.write(line + "\n")
        if data is not None:
            self.file.write(json.dumps(data, indent=1, default=str)[:20000] + "\n")
        self.file.flush()


def main() -> int:
    args = _parse()
    out = Path(args.out or os.environ.get("OUT") or "perf-out")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="kernelagent-perf-"))
    log = Log(out / "perf_pipeline.log")
    device = "cpu" if args.cpu_smoke else "cuda"
    recheck = dict(item.split("=", 1) for item in args.recheck or [])
    wanted = set(args.only or []) | set(recheck)
    problems = [p for p in PROBLEMS if not wanted or p.name in wanted]
    env = _environment(log)
    ceil = ceilings(cache_path=work / "ceilings.json")
    log("ceilings", ceil)
    prepared = _prepare_all(problems, device, work, log, recheck)
    if recheck:
        return _recheck(problems, prepared, recheck, set(args.reference or []), ceil, env, work, out, log)
    rows = []
    deadline = time.monotonic() + args.budget_s
    for problem in problems:
        if problem.name not in prepared:
            rows.append({"problem": problem.name, "error": "preparation failed (see the log)"})
            continue
        left = deadline - time.monotonic()
        if left < 60:
            rows.append({"problem": problem.name, "error": "not run: the time budget was spent"})
            continue
        try:
            rows.append(_benchmark(problem, prepared[problem.name], ceil, work, log, smoke=args.cpu_smoke, left=left))
        except Exception as err:  # noqa: BLE001 - report the failure and go on with the other problems
            log(f"{problem.name}: failed: {type(err).__name__}: {err}")
            rows.append({"problem": problem.name, "error": f"{type(err).__name__}: {err}"})
    results = {"environment": env, "ceilings": ceil, "problems": rows, "command": " ".join(sys.argv)}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = _table(rows, ceil, env)
    (out / "table.md").write_text(table + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print("\n" + table)
    return 0


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="where logs and results go (default: $OUT, else ./perf-out)")
    parser.add_argument("--work", help="scratch folder for harnesses (default: a new temporary folder)")
    parser.add_argument("--only", nargs="*", help="problem names to run")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU; checks plumbing, times nothing")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--budget-s", type=float, default=480, help="wall-clock budget for the timed phase")
    parser.add_argument("--recheck", nargs="*", help="NAME=LABEL: verify and re-time a recorded sweep result")
    parser.add_argument("--reference", nargs="*", help="with --recheck: problems whose reference is re-timed too")
    return parser.parse_args()


def _environment(log: Log) -> dict:
    import torch
    import triton

    env = {
        "torch": torch.__version__,
        "triton": triton.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda,
    }
    log("environment", env)
    return env


# ----------------------------------------------------------------------------------------------------------------
# Phase A (parallel: nothing here is timed): reference harness on the device, then the seed's verification


def _prepare_all(problems: list[Problem], device: str, work: Path, log: Log, recheck: dict) -> dict[str, dict]:
    with ThreadPoolExecutor(max_workers=len(problems)) as pool:
        futures = {p.name: pool.submit(_prepare, p, device, work, log, recheck.get(p.name)) for p in problems}
    prepared = {}
    for name, future in futures.items():
        try:
            prepared[name] = future.result()
        except Exception as err:  # noqa: BLE001 - one broken problem must not hide the others' figures
            log(f"{name}: preparation failed: {type(err).__name__}: {err}")
    return prepared


def _prepare(problem: Problem, device: str, work: Path, log: Log, config: str | None) -> dict:
    folder = work / problem.name
    harness = prepare_reference(
        reference_source=(PROBLEMS_DIR / f"{problem.name}.py").read_text(),
        harness_dir=folder / "harness",
        device=device,
        draws=2,
        sizes=problem.smoke_sizes if device == "cpu" else {},
        precision=problem.precision,
        seed=1234,
        timeout_s=600,
        cache_dir=work / "triton-cache",
    )
    seed = (PROBLEMS_DIR / f"{problem.name}_seed.py").read_text()
    verdict = verify_reference_candidate(seed, harness, folder / "verify-seed", timeout_s=600)
    log(f"{problem.name}: harness on {harness['device']}, seed verification: {verdict['reason']}", verdict)
    if not verdict["passed"]:
        raise RuntimeError(f"the seed failed verification: {verdict['reason']}")
    prepared = {"harness": harness, "seed": seed}
    if config:  # a recorded sweep result is timed only after it passes verification again, like any candidate
        tuned = apply_label(seed, config)
        verdict = verify_reference_candidate(tuned, harness, folder / "verify-tuned", timeout_s=600)
        log(f"{problem.name}: {config} verification: {verdict['reason']}")
        if not verdict["passed"]:
            raise RuntimeError(f"{config} failed verification: {verdict['reason']}")
        prepared["tuned"] = (config, tuned)
    return prepared


# ----------------------------------------------------------------------------------------------------------------
# Phase B (serial: one timed process at a time): reference, autotune, final re-timing with the cross-check


def _benchmark(problem: Problem, prepared: dict, ceil: dict, work: Path, log: Log, *, smoke: bool, left: float) -> dict:
    harness, seed = prepared["harness"], prepared["seed"]
    folder = work / problem.name
    if smoke:
        return _smoke(problem, harness, seed, folder, log)
    reference = time_reference(harness, folder / "time-reference", timeout_s=600)
    log(f"{problem.name}: reference", reference)
    verify = reference_verifier(harness, folder / "verify-variants", timeout_s=600)
    tuned = autotune(
        seed, harness, folder / "autotune", verify=verify, max_variants=problem.max_variants, timeout_s=min(300, left)
    )
    log(f"{problem.name}: autotune chose {tuned.get('label')}", tuned | {"code": None})
    # Re-time seed and winner together in a fresh process: the sweep's minimum is biased low by selection.
    seed_t, final_t = time_candidates(
        [seed, tuned["code"]], harness, folder / "final", crosscheck=True, labels=["seed", tuned["label"]]
    )
    log(f"{problem.name}: final timings", [seed_t, final_t])
    return _row(problem, reference, tuned, seed_t, final_t, ceil)


def _row(problem: Problem, reference: dict, tuned: dict, seed_t: dict, final_t: dict, ceil: dict) -> dict:
    row = {
        "problem": problem.name,
        "reference": reference,
        "seed": seed_t,
        "final": final_t,
        "autotune": {k: tuned.get(k) for k in ("label", "ms", "seed_ms", "improved", "trials", "verified")},
    }
    if "ms" in final_t and "bytes" in reference:
        dtype = reference["dtype"]
        row["roofline"] = roofline(final_t["ms"], reference["bytes"], reference["flops"], ceil, dtype)
        row["eager_roofline"] = roofline(reference["eager_ms"], reference["bytes"], reference["flops"], ceil, dtype)
        row["speedups"] = speedups(final_t["ms"], reference)
    return row


def _smoke(problem: Problem, harness: dict, seed: str, folder: Path, log: Log) -> dict:
    """CPU: timing must refuse; the first few rewritten variants must still verify under the interpreter."""
    reference = time_reference(harness, folder / "time-reference")
    assert "skipped" in reference and "eager_ms" not in reference, reference
    checked = []
    for i, (label, code) in enumerate(variants(seed, max_variants=3)):
        verdict = verify_reference_candidate(code, harness, folder / f"smoke-{i}", timeout_s=600)
        checked.append({"label": label, "passed": verdict["passed"], "reason": verdict["reason"]})
    log(f"{problem.name}: smoke variants", checked)
    return {"problem": problem.name, "reference": reference, "smoke_variants": checked}


def _recheck(problems, prepared, recheck, with_reference, ceil, env, work, out, log) -> int:  # noqa: ANN001
    """Seed and recorded config re-timed in one fresh process each, with the CUDA-graph cross-check."""
    rows = []
    for problem in problems:
        if problem.name not in prepared:
            continue
        harness, seed = prepared[problem.name]["harness"], prepared[problem.name]["seed"]
        config, tuned = prepared[problem.name]["tuned"]
        folder = work / problem.name
        reference = time_reference(harness, folder / "time-reference") if problem.name in with_reference else {}
        timed = time_candidates([seed, tuned], harness, folder / "recheck", crosscheck=True, labels=["seed", config])
        log(f"{problem.name}: recheck", {"reference": reference, "timed": timed})
        rows.append({"problem": problem.name, "reference": reference, "timed": timed})
    results = {"environment": env, "ceilings": ceil, "recheck": rows, "command": " ".join(sys.argv)}
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = _recheck_table(rows, ceil, env)
    (out / "table.md").write_text(table + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print("\n" + table)
    return 0


def _recheck_table(rows: list[dict], ceil: dict, env: dict) -> str:
    lines = [
        f"GPU: {env.get('gpu')} | torch {env['torch']} | triton {env['triton']} | copy {ceil.get('copy_gbps')} GB/s",
        "",
        "| problem | code | eager ms | compile ms | ms (ours) | p20-p80 | no-flush ms | cudagraph ms | ours/cudagraph "
        "| drift | roofline |",
        "|" + " --- |" * 11,
    ]
    for row in rows:
        ref = row["reference"]
        for t in row["timed"]:
            if "ms" not in t:
                why = t.get("error") or t.get("skipped")
                lines.append(f"| {row['problem']} | {t.get('label')} | {why} |" + " |" * 8)
                continue
            cg = t.get("cudagraph_ms")
            roof = roofline(t["ms"], ref["bytes"], ref["flops"], ceil, ref["dtype"]) if "bytes" in ref else None
            lines.append(
                f"| {row['problem']} | {t['label']} | {_f(ref.get('eager_ms'))} | {_f(ref.get('compile_ms'))} "
                f"| {t['ms']:.4f} | {t['p20_ms']:.4f}-{t['p80_ms']:.4f} | {_f(t.get('no_flush_ms'))} | {_f(cg)} "
                f"| {_f(t['ms'] / cg if cg else None, 3)} | {t['drift']:.3f} "
                f"| {_roof_cell(roof)} |"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# Report


def _table(rows: list[dict], ceil: dict, env: dict) -> str:
    head = (
        f"GPU: {env.get('gpu')} | torch {env['torch']} | triton {env['triton']} | "
        f"copy {ceil.get('copy_gbps')} GB/s | matmul TFLOP/s {ceil.get('matmul_tflops')}"
    )
    lines = [
        head,
        "",
        "| problem | eager ms | compile ms | seed ms | tuned ms | tuned/seed | vs eager | vs compile | bound "
        "| roofline (eager) | roofline (tuned) | target | cudagraph ms | ours/cudagraph | tuned config |",
        "|" + " --- |" * 15,
    ]
    lines += [_table_row(row) for row in rows]
    return "\n".join(lines)


def _table_row(row: dict) -> str:
    if "error" in row:
        return f"| {row['problem']} | {row['error']} |" + " |" * 14
    if "smoke_variants" in row:
        ok = all(v["passed"] for v in row["smoke_variants"])
        return f"| {row['problem']} | skipped (CPU) | | | | | | | | | | variants verify: {ok} | | | |"
    ref, seed, final = row["reference"], row["seed"], row["final"]
    if "roofline" not in row:
        return f"| {row['problem']} | {ref.get('error', '')} | | {seed.get('error', '')} | {final.get('error', '')} |"
    roof, eager_roof, speed = row["roofline"], row["eager_roofline"], row["speedups"]
    gain = seed["ms"] / final["ms"] if "ms" in seed else None
    cg = final.get("cudagraph_ms")
    ratio = final["ms"] / cg if cg else None
    return (
        f"| {row['problem']} | {ref['eager_ms']:.4f} | {_f(ref.get('compile_ms'))} | {_f(seed.get('ms'))} "
        f"| {final['ms']:.4f} | {_f(gain, 2)}x | {_f(speed['speedup_vs_eager'], 2)}x "
        f"| {_f(speed['speedup_vs_compile'], 2)}x | {roof['bound']} | {eager_roof['fraction']:.1%} "
        f"| {roof['fraction']:.1%} | {_verdict(row, gain, ratio)} | {_f(cg)} | {_f(ratio, 3)} "
        f"| {row['autotune']['label']} |"
    )


def _verdict(row: dict, gain: float | None, ratio: float | None) -> str:
    checks = []
    if row["roofline"]["bound"] == "memory":
        checks.append(f"≥{MEMORY_TARGET:.0%} BW: {'met' if row['roofline']['fraction'] >= MEMORY_TARGET else 'MISSED'}")
    else:
        checks.append(f"≥{AUTOTUNE_TARGET:g}x tune: {'met' if gain and gain >= AUTOTUNE_TARGET else 'MISSED'}")
    checks.append(f"±5% cg: {'met' if ratio and abs(ratio - 1) <= CROSSCHECK_TOLERANCE else 'MISSED'}")
    return "; ".join(checks)


def _roof_cell(roof: dict | None) -> str:
    return f"{roof['fraction']:.1%} of {roof['bound']} floor" if roof else "n/a"


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
