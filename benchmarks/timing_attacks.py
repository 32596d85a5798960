"""The timing attack corpus (tests/corpus/timing_attacks/) through the real judge on a GPU: a table per attack of
what was expected, what the judge concluded, the claimed median against the honest one, and the roofline floor.

    python3 benchmarks/timing_attacks.py --out $OUT/timing-attacks-gpu.md      # CUDA machine, about 2-3 minutes
    python3 benchmarks/timing_attacks.py --cpu --out /tmp/timing-attacks-cpu.md  # the same on CPU (host clock)

The problem is the corpus's a + b at a GPU size (benchmarks/problems/vector_add.py, N = 16M by default: 192 MiB
moved a call, ~50 us on an H100/H200), so that a figure below the floor means something.
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

from kernelagent.bench import timing  # noqa: E402
from kernelagent.verify.loading import load_module  # noqa: E402
from kernelagent.verify.verifier import prepare_reference, release  # noqa: E402

_runner = load_module(ROOT / "tests" / "corpus" / "timing_attacks" / "run.py", "timing_attacks_run")
MANIFEST, run_corpus = _runner.MANIFEST, _runner.run_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "timing-attacks-gpu.md")
    parser.add_argument("--n", type=int, default=16 * 1024 * 1024, help="elements per input (size constant N)")
    parser.add_argument("--cpu", action="store_true", help="host clock and the interpreter (protocol check only)")
    args = parser.parse_args()
    device = "cpu" if args.cpu else "cuda"
    # Fewer timed calls than a real run (every one costs the judge a fresh draw and a comparison): the attacks are
    # caught or not on the first checked calls, and the honest figures need only a stable median.
    timing.BENCH.update({"warmup_ms": 10, "rep_ms": 30, "min_reps": 20, "max_reps": 200})
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="timing-attacks-") as tmp:
        folder = Path(tmp)
        problem = ROOT / "tests" / "corpus" / MANIFEST["problem"] if args.cpu else ROOT / MANIFEST["gpu_problem"]
        harness = prepare_reference(
            reference_source=problem.read_text(),
            harness_dir=folder / "harness",
            device=device,
            draws=1,
            sizes={} if args.cpu else {"N": args.n},
            precision="spec",
            timeout_s=300,
            cache_dir=folder / "cache",
        )
        if args.cpu:
            harness = {**harness, "device": "cuda", "_test_clock": "host"}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            rows = run_corpus(harness, folder / "runs", device, timeout_s=900)
            # Written now and again with the baselines: torch.compile in a fresh cache can take a while.
            args.out.write_text(render(rows, {}, args, device, time.time() - started))
            reference = timing.time_reference(harness, folder / "reference")
        finally:
            release(harness)
    args.out.write_text(render(rows, reference, args, device, time.time() - started))
    print(args.out.read_text())
    return 0 if all(row["caught"] for row in rows) else 1


def claimed(result: dict) -> float | None:
    """The median the candidate's process claimed: its result, or the figure in the judge's evidence."""
    evidence = result.get("evidence") or {}
    for value in (result.get("ms"), evidence.get("claimed_ms"), evidence.get("claimed_ms_per_call")):
        if isinstance(value, (int, float)):
            return float(value)
    return None


def render(rows: list[dict], reference: dict, args: argparse.Namespace, device: str, seconds: float) -> str:
    honest = next((r["result"] for r in rows if r["file"] == "honest_add.py"), {})
    floor = next(
        (
            r["result"].get("floor_ms") or (r["result"].get("evidence") or {}).get("floor_ms")
            for r in rows
            if (r["result"].get("floor_ms") or (r["result"].get("evidence") or {}).get("floor_ms"))
        ),
        None,
    )
    lines = [
        "# Timing attacks through the judge" + (" (CPU, host clock: protocol only)" if device == "cpu" else ""),
        "",
        f"Command: `python3 benchmarks/timing_attacks.py{' --cpu' if device == 'cpu' else ''} --out {args.out.name}`"
        f" ({time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, {seconds:.0f} s).",
        f"Problem: a + b, N = {args.n if device == 'cuda' else '16x256'}; GPU: {reference.get('gpu')}; "
        f"eager {_ms(reference.get('eager_ms'))} ms, torch.compile {_ms(reference.get('compile_ms'))} ms; "
        f"honest Triton kernel {_ms(honest.get('ms'))} ms; roofline floor {_ms(floor)} ms.",
        "",
        "| attack | class | expected | got | caught | claimed ms | honest ms | floor ms | evidence |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        result = row["result"]
        evidence = str(result.get("error") or "").replace("|", "/").replace("\n", " ")[:160]
        lines.append(
            f"| {row['file']} | {row['class']} | {', '.join(row['expected'])} | {row['got']} | "
            f"{'yes' if row['caught'] else '**NO**'} | {_ms(claimed(result))} | {_ms(honest.get('ms'))} | "
            f"{_ms(floor)} | {evidence} |"
        )
    caught = sum(row["caught"] for row in rows)
    lines += ["", f"{caught} of {len(rows)} as expected.", ""]
    return "\n".join(lines)


def _ms(value: object) -> str:
    return f"{value:.5f}" if isinstance(value, (int, float)) else "-"


if __name__ == "__main__":
    sys.exit(main())
