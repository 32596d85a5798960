"""Verify, then time, candidate files against one problem, as an outside attacker of the timing would, and print the
results as JSON (the honest control first when given, so that claimed and honest figures sit side by side).

    python tests/time_runner.py PROBLEM.py CANDIDATE.py [CANDIDATE.py ...] [--device cpu|cuda] [--no-policy]
                                [--sizes N=16777216] [--rounds 1]

On the CPU the timing child runs on the host clock under the interpreter (a check of the protocol, never a speed);
on a CUDA machine the figures are real. --no-policy skips the static policy for both steps, so that the judge's
timing session is attacked on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernelagent.bench import timing  # noqa: E402
from kernelagent.bench.roofline import ceilings as measured_ceilings  # noqa: E402
from kernelagent.verify import verifier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("problem", type=Path)
    parser.add_argument("candidates", type=Path, nargs="+")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-policy", action="store_true")
    parser.add_argument("--sizes", nargs="*", default=[], help="NAME=VALUE size constants of the problem")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="time-attack-"))
    sizes = {k: int(v) for k, v in (item.split("=", 1) for item in args.sizes)}
    harness = verifier.prepare_reference(reference_source=args.problem.read_text(), harness_dir=work / "harness",
                                         device=args.device, draws=2, sizes=sizes, precision="spec",
                                         timeout_s=args.timeout, cache_dir=work / "cache")
    rows = []
    try:
        codes = [c.read_text() for c in args.candidates]
        verdicts = []
        for i, code in enumerate(codes):
            judge = verifier.judge_without_policy if args.no_policy else verifier.verify_reference_candidate
            verdict = judge(code, harness, work / f"verify{i}", timeout_s=args.timeout)
            verdicts.append({k: verdict.get(k) for k in ("passed", "failure_class", "reason")})
        timed_harness = {**harness, "device": "cuda", "_test_clock": "host"} if args.device == "cpu" else harness
        ceilings = None if args.device == "cpu" else measured_ceilings()
        results = timing.time_candidates(codes, timed_harness, work / "timing", labels=[c.name for c in args.candidates],
                                         static_policy=not args.no_policy, ceilings=ceilings, rounds=args.rounds,
                                         timeout_s=args.timeout)
        for path, verdict, result in zip(args.candidates, verdicts, results, strict=True):
            rows.append({"candidate": path.name, "verified": verdict, "timing": result})
    finally:
        verifier.release(harness)
    print(json.dumps({"clock": "host (not a speed)" if args.device == "cpu" else "cuda", "rows": rows, "work": str(work)},
                     indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
