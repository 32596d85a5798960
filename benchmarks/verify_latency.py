"""Per-candidate verification wall time: cold subprocess (run_sandboxed) vs warm fork server (WarmPool).

.venv/bin/python benchmarks/verify_latency.py [--runs 5] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelagent.sandbox import WarmPool  # noqa: E402
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
        with WarmPool(interpret=interpret) as pool:
            pool.warm_up()
            boot_s = time.perf_counter() - booted
            rows = [_measure_case(case, pool, work, cache_dir, device, args) for case in CASES]
    _print_table(_machine(device), rows, boot_s, args.runs)
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per case and path (after one warm-up)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--timeout", type=float, default=120.0, help="per-verification timeout, seconds")
    return parser.parse_args()


def _resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _measure_case(
    case: tuple[str, str, str], pool: WarmPool, work: Path, cache_dir: Path, device: str, args: argparse.Namespace
) -> tuple[str, float, float]:
    name, problem, candidate = case
    harness = verifier.prepare_reference(
        reference_source=(CORPUS / "problems" / problem).read_text(),
        harness_dir=work / problem / "harness",
        device=device,
        draws=2,
        sizes={},
        precision="spec",
        seed=1,
        timeout_s=args.timeout,
        cache_dir=cache_dir,
    )
    code = (CORPUS / "honest" / candidate).read_text()
    cold, warm = [], []
    for i in range(args.runs + 1):  # run 0 warms the page cache and Triton's compile cache for both paths
        cold_s = _verify(code, harness, work / problem / f"cold{i}", args.timeout, runner=None)
        warm_s = _verify(code, harness, work / problem / f"warm{i}", args.timeout, runner=pool.run)
        if i:
            cold.append(cold_s)
            warm.append(warm_s)
    return name, statistics.median(cold), statistics.median(warm)


def _verify(code: str, harness: dict, workdir: Path, timeout_s: float, runner) -> float:  # noqa: ANN001
    """Wall time of the public verifier; runner replaces its run_sandboxed (the one line a warm default changes)."""
    patch = mock.patch.object(verifier, "run_sandboxed", runner) if runner else contextlib.nullcontext()
    with patch:
        started = time.perf_counter()
        verdict = verifier.verify_reference_candidate(code, harness, workdir, timeout_s=timeout_s)
        wall_s = time.perf_counter() - started
    if not verdict["passed"]:
        raise SystemExit(f"an honest candidate failed verification: {verdict['reason']}\n{verdict['evidence']}")
    return wall_s


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
        print(f"| {machine} | {name} | {cold:.3f} | {warm:.3f} | {cold / warm:.1f}x |")


if __name__ == "__main__":
    sys.exit(main())
