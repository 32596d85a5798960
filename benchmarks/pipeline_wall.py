"""Whole-pipeline wall time for one spec with 4 seeds, warm workers vs a cold subprocess per candidate.

    .venv/bin/python benchmarks/pipeline_wall.py [--device cpu|cuda] [--repeats 2]

The LLM is the scripted endpoint (every seed answers an honest softmax, seed 3 only after one refinement), so the
figure is the pipeline's own cost: graph, checkpoints, verification.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kernelagent.app import start_run  # noqa: E402
from kernelagent.graph.context import RunContext  # noqa: E402
from kernelagent.llm.scripted_server import ScriptedLLMServer  # noqa: E402

REPLIES = ROOT / "tests" / "replies"
SCRIPT = {
    "base_dir": str(REPLIES),
    "rules": [
        {"id": "s3", "match": {"meta": {"task": "seed", "seed": "3"}}, "replies": [{"file": "softmax_off_by_one.md"}]},
        {"id": "seed", "match": {"meta": {"task": "seed"}}, "replies": [{"file": "softmax_correct.md"}]},
        {"id": "refine", "match": {"meta": {"task": "refine"}}, "replies": [{"file": "softmax_correct.md"}]},
    ],
}


def one_run(warm: bool, device: str) -> float:
    os.environ["KERNELAGENT_BENCH_KEY"] = "scripted"
    with ScriptedLLMServer(SCRIPT) as server, tempfile.TemporaryDirectory() as runs:
        ctx = RunContext(model="scripted-model", base_url=server.base_url, api_key_env="KERNELAGENT_BENCH_KEY",
                         num_seeds=4, rounds_per_seed=2, stop_on_first_pass=False, device=device, runs_dir=runs,
                         warm_workers=warm, optimise_rounds=0, autotune=False, input_draws=3, max_retries=0)
        started = time.perf_counter()
        result = start_run(str(ROOT / "examples" / "softmax.md"), ctx)
        elapsed = time.perf_counter() - started
        assert result["status"] == "passed" and all(s["passed"] for s in result["seeds"]), result
        print(f"{'warm' if warm else 'cold'} run: {elapsed:.1f} s", file=sys.stderr, flush=True)  # partial results
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    one_run(True, args.device)  # starts the warm pool and fills Triton's cache, as a long-lived process would have
    cold = [one_run(False, args.device) for _ in range(args.repeats)]
    warm = [one_run(True, args.device) for _ in range(args.repeats)]
    print(f"| machine | device | seeds | cold total s | warm total s | speedup |\n|---|---|---|---|---|---|\n"
          f"| {platform.processor() or platform.machine()}, {os.cpu_count()} cores | {args.device} | 4 (+1 refine) | "
          f"{statistics.median(cold):.1f} | {statistics.median(warm):.1f} | "
          f"{statistics.median(cold) / statistics.median(warm):.1f}x |")


if __name__ == "__main__":
    main()
