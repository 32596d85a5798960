"""Per-candidate verification wall time: cold subprocess (run_sandboxed) vs warm fork server (the shared WarmPool).

.venv/bin/python benchmarks/verify_latency.py [--runs 5] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelagent.sandbox.warm import shared_pool  # noqa: E402
from kernelagent.verify import verifier  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"
# (case, problem, honest candidate): a small elementwise kernel and a small tiled matmul (+ bias + relu).
CASES = (
    ("elementwise add 16x256", "elementwise_add.py", "elementwise_add__block1024.py"),
    ("matmul 48x64 @ 64x32 (+bias, relu)", "linear_bias_relu.py", "linear_bias_relu__tiled16.py"),
)


def main() -> int:
    args = _parse_args()
    device = _resolve_device(args.device)
    interpret = device == "cpu"
    with tempfile.TemporaryDirectory(prefix="verify-latency-") as tmp:
        work = Path(tmp)
        cache_dir = verifier.triton_cache_dir(work)
        booted = time.perf_counter()
        shared_pool(interpret).warm_up()  # the pool the verifier's warm path uses
        boot_s = time.perf_counter() - booted
        rows = [_measure_case(case, work, cache_dir, device, args) for case in CASES]
    _print_table(_machine(device), rows, boot_s, args.runs)
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per case and path (after one warm-up)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--timeout", type=float, default=120.0, help="per-verification timeout, seconds")
    parser.add_argument("--no-extra-draws", action="store_true", help="only get_inputs() draws (no x16, x1/16, shape)")
    return parser.parse_args()


def _resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _measure_case(
    case: tuple[str, str, str], work: Path, cache_dir: Path, device: str, args: argparse.Namespace
) -> tuple[str, float, float]:
    name, problem, candidate = case
    harness = verifier.prepare_reference(
        reference_source=(CORPUS / "problems" / problem).read_text(),
        harness_dir=work / problem / "harness",
        device=device,
        draws=2,
        sizes={},
        precision="spec",
        timeout_s=args.timeout,
        cache_dir=cache_dir,
        extra_draws=not args.no_extra_draws,
    )
    code = (CORPUS / "honest" / candidate).read_text()
    cold, warm = [], []
    for i in range(args.runs + 1):  # run 0 warms the page cache and Triton's compile cache for both paths
        # the verifier's own switch (harness["warm"], what --cold-workers sets), so both paths are the product's
        cold_s = _verify(code, harness | {"warm": False}, work / problem / f"cold{i}", args.timeout)
        warm_s = _verify(code, harness | {"warm": True}, work / problem / f"warm{i}", args.timeout)
        if i:
            cold.append(cold_s)
            warm.append(warm_s)
    return name, _medians(cold), _medians(warm)


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _verify(code: str, harness: dict, workdir: Path, timeout_s: float) -> dict[str, float]:
    """Wall time of the public verifier, cold or warm as the harness says."""
    started = time.perf_counter()
    verdict = verifier.verify_reference_candidate(code, harness, workdir, timeout_s=timeout_s)
    wall_s = time.perf_counter() - started
    if not verdict["passed"]:
        raise SystemExit(f"an honest candidate failed verification: {verdict['reason']}\n{verdict['evidence']}")
    # Where the child spent its time, as the judge heard it: imports before the candidate, then import + __init__.
    details = verdict["details"]
    return {"total": wall_s, "import": details["import_s"], "build": details["build_s"],
            "draws": float(details["draws_judged"])}


def _machine(device: str) -> str:
    cores = len(os.sched_getaffinity(0))
    if device == "cuda":
        import torch

        return f"{torch.cuda.get_device_name(0)} + {_cpu_model()}, {cores} cores"
    return f"{_cpu_model()}, {cores} cores (CPU, TRITON_INTERPRET=1)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _print_table(machine: str, rows: list[tuple], boot_s: float, runs: int) -> None:
    print(f"median of {runs} runs per cell; warm pool boot (once per process): {boot_s:.2f} s\n")
    print("| machine | case | cold median s | warm median s | speedup |")
    print("|---|---|---:|---:|---:|")
    for name, cold, warm in rows:
        print(
            f"| {machine} | {name} | {cold['total']:.3f} | {warm['total']:.3f} | {cold['total'] / warm['total']:.1f}x |"
        )
    phases = [key for key in rows[0][1] if key != "total"]
    print("\nInside the child (medians, s; the rest of the total is process start, staging and the comparison):\n")
    print("| case | path | " + " | ".join(phases) + " |")
    print("|---|---|" + "---:|" * len(phases))
    for name, cold, warm in rows:
        for path, cells in (("cold", cold), ("warm", warm)):
            print(f"| {name} | {path} | " + " | ".join(f"{cells[key]:.3f}" for key in phases) + " |")


if __name__ == "__main__":
    sys.exit(main())
