"""Does our timing reproduce? The same kernel timed twice, in two separate timing calls (each interleaving its rounds
in fresh processes, as optimise and autotune do), and each median set against the other call's interval.

    python3 benchmarks/timing_repeat.py --out $OUT/timing-repeat.md      # CUDA machine, about 4 minutes

The kernels are dobench_compare.py's (large memory-bound, compute-bound and launch-bound). The interval is the one
every decision uses (kernelagent/bench/stats.py: an order-statistic interval for the median over per-round medians,
ROUNDS rounds). Agreement means each call's median lies inside the other call's interval.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dobench_compare import KERNELS  # noqa: E402
from kernelagent.bench.stats import ROUNDS, time_together  # noqa: E402
from kernelagent.verify.verifier import release  # noqa: E402

CHOSEN = ("vector_add 64M", "softmax 8192x8192", "linear+bias+relu 4096^3 fp16", "relu 16x256")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "timing-repeat.md")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--only", nargs="*", default=list(CHOSEN))
    args = parser.parse_args()
    started = time.time()
    rows = []
    with tempfile.TemporaryDirectory(prefix="timing-repeat-") as tmp:
        folder = Path(tmp)
        for k, kernel in enumerate(kernel for kernel in KERNELS if kernel.name in args.only):
            harness = kernel.harness(folder / f"h{k}", folder / "cache")
            try:
                calls = [
                    time_together([kernel.code()], harness, folder / f"k{k}-call{c}", labels=[kernel.name],
                                  rounds=args.rounds)[0]
                    for c in range(2)
                ]
            finally:
                release(harness)
            rows.append((kernel.name, calls))
            print(kernel.name, [(c.get("ms"), c.get("interval"), c.get("error")) for c in calls], flush=True)
    text = render(rows, args, time.time() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0 if all(agree(calls) for _, calls in rows) else 1


def inside(median: float | None, interval: dict | None) -> bool:
    return bool(median and interval and "low_ms" in interval and interval["low_ms"] <= median <= interval["high_ms"])


def agree(calls: list[dict]) -> bool:
    first, second = calls
    return inside(first.get("ms"), second.get("interval")) and inside(second.get("ms"), first.get("interval"))


def render(rows: list, args: argparse.Namespace, seconds: float) -> str:
    lines = [
        "# The same kernel timed twice, in separate timing calls",
        "",
        f"Command: `python3 benchmarks/timing_repeat.py --out {args.out.name}` ({time.strftime('%Y-%m-%d %H:%M')},"
        f" {platform.node()}, {seconds:.0f} s, {args.rounds} rounds per call).",
        "",
        "| kernel | call 1 median ms | call 1 interval ms | call 2 median ms | call 2 interval ms | difference |"
        " each median inside the other's interval |",
        "| --- | ---: | --- | ---: | --- | ---: | --- |",
    ]
    for name, (first, second) in rows:
        a, b = first.get("ms"), second.get("ms")
        lines.append(
            f"| {name} | {_ms(first)} | {_band(first)} | {_ms(second)} | {_band(second)} | "
            f"{f'{(b - a) / a:+.2%}' if a and b else '-'} | {'yes' if agree([first, second]) else '**no**'} |"
        )
    lines += [
        "",
        "Intervals: the order-statistic interval for the median over the per-round medians (kernelagent/bench/stats.py,",
        "docs/statistics.md), the interval every acceptance decision uses; its exact coverage is given with it.",
    ]
    return "\n".join(lines) + "\n"


def _ms(result: dict) -> str:
    return f"{result['ms']:.5f}" if result.get("ms") else str(result.get("error", "-"))[:80]


def _band(result: dict) -> str:
    interval = result.get("interval") or {}
    if "low_ms" not in interval:
        return interval.get("why", "-")
    return f"[{interval['low_ms']:.5f}, {interval['high_ms']:.5f}] ({interval['level']:.1%}, n={interval['n']})"


if __name__ == "__main__":
    sys.exit(main())
