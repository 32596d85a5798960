"""Judge one candidate file against one problem file, as an outside attacker would, and print the verdict as JSON.

    python tests/attack_runner.py CANDIDATE.py PROBLEM.py [--no-policy] [--device cpu|cuda] [--draws N]

--no-policy skips the static policy (the first line of defence) so that the judge and the sandbox are attacked on
their own: the product runs both, and neither may rely on the other.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernelagent.verify import verifier  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("candidate", type=Path)
    parser.add_argument("problem", type=Path)
    parser.add_argument("--no-policy", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="attack-"))
    harness = verifier.prepare_reference(
        reference_source=args.problem.read_text(),
        harness_dir=work / "harness",
        device=args.device,
        draws=args.draws,
        sizes={},
        precision="spec",
        timeout_s=args.timeout,
        cache_dir=work / "cache",
    )
    code = args.candidate.read_text()
    started = time.perf_counter()
    if args.no_policy:
        verdict = verifier.judge_without_policy(code, harness, work / "candidate", timeout_s=args.timeout)
    else:
        verdict = verifier.verify_reference_candidate(code, harness, work / "candidate", timeout_s=args.timeout)
    verdict["wall_s"] = round(time.perf_counter() - started, 3)
    print(json.dumps({"passed": verdict["passed"], "failure_class": verdict["failure_class"],
                      "reason": verdict["reason"], "details": verdict.get("details", {}), "work": str(work)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
