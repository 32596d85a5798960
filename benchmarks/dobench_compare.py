"""Our timing figure against triton.testing.do_bench and do_bench_cudagraph, run in a separate fresh process, for
honest Triton kernels: memory- and compute-bound, small and large.

    python3 benchmarks/dobench_compare.py --out $OUT/dobench-compare.md      # CUDA machine, about 3 minutes

Ours: time_candidates through the judge (fresh checked inputs every call, L2 flushed and left clean, CUDA events,
median). do_bench: Triton's defaults (warmup 25 ms, rep 100 ms, L2 flushed by zeroing, median) on one input set;
do_bench_cudagraph: the same forward replayed in a CUDA graph (no launch overhead, no flush). Above ~50 us the
three should agree within 5%; below, launch overhead (a few us per launch from Python) separates events around an
eager launch from a graph replay, and the table's last column says how much of ours it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelagent.bench.timing import time_candidates  # noqa: E402
from kernelagent.verify.verifier import prepare_reference, release  # noqa: E402

PROBLEMS = ROOT / "benchmarks" / "problems"
CORPUS = ROOT / "tests" / "corpus"
TILED = {"BLOCK_M=16, BLOCK_N=16, BLOCK_K=16, num_warps=1": "BLOCK_M=128, BLOCK_N=128, BLOCK_K=32, num_warps=8"}


@dataclass
class Kernel:
    name: str
    problem: Path
    candidate: Path
    bound: str
    sizes: dict[str, int] = field(default_factory=dict)
    precision: str = "spec"
    rewrite: dict[str, str] = field(default_factory=dict)  # literal launch changes applied to the candidate

    def harness(self, harness_dir: Path, cache_dir: Path) -> dict:
        """The judge's harness for this kernel's problem, sizes and precision, on the GPU (release() it after)."""
        return prepare_reference(reference_source=self.problem.read_text(), harness_dir=harness_dir, device="cuda",
                                 draws=1, sizes=self.sizes, precision=self.precision, timeout_s=300, cache_dir=cache_dir)

    def code(self) -> str:
        text = self.candidate.read_text()
        for old, new in self.rewrite.items():
            text = text.replace(old, new)
        return text


KERNELS = [
    Kernel("vector_add 64M", PROBLEMS / "vector_add.py", PROBLEMS / "vector_add_seed.py", "memory"),
    Kernel("vector_add 1M", PROBLEMS / "vector_add.py", PROBLEMS / "vector_add_seed.py", "memory", {"N": 1 << 20}),
    Kernel("softmax 8192x8192", PROBLEMS / "softmax_rows.py", PROBLEMS / "softmax_rows_seed.py", "memory"),
    Kernel(
        "softmax 1024x1024",
        PROBLEMS / "softmax_rows.py",
        PROBLEMS / "softmax_rows_seed.py",
        "memory",
        {"ROWS": 1024, "COLS": 1024},
    ),
    Kernel("sum_all 64M", PROBLEMS / "sum_all.py", PROBLEMS / "sum_all_seed.py", "memory"),
    Kernel(
        "linear+bias+relu 4096^3 fp16",
        PROBLEMS / "linear_bias_relu.py",
        PROBLEMS / "linear_bias_relu_seed.py",
        "compute",
        precision="fp16",
        rewrite=TILED,
    ),
    Kernel(
        "linear+bias+relu 512x1024x1024 fp16",
        PROBLEMS / "linear_bias_relu.py",
        PROBLEMS / "linear_bias_relu_seed.py",
        "compute",
        {"BATCH": 512, "IN_FEATURES": 1024, "OUT_FEATURES": 1024},
        "fp16",
        TILED,
    ),
    Kernel("relu 16x256", CORPUS / "problems" / "relu.py", CORPUS / "honest" / "relu__basic.py", "launch"),
]

# The separate process: plain torch + triton, nothing of ours.
DOBENCH = r"""
import importlib.util, json, sys, torch, triton.testing as tt

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

out = {}
for job in json.loads(sys.argv[1]):
    problem = load(job["problem"], "problem_" + str(len(out)))
    for key, value in job["sizes"].items():
        setattr(problem, key, value)
    candidate = load(job["candidate"], "candidate_" + str(len(out)))
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(job["precision"])
    init = problem.get_init_inputs()
    model = candidate.ModelNew(*init).cuda().eval()
    model.load_state_dict(problem.Model(*init).state_dict())
    with torch.device("cuda"):
        inputs = [x.cuda() if torch.is_tensor(x) else x for x in problem.get_inputs()]
    if dtype is not None:
        model = model.to(dtype)
        inputs = [x.to(dtype) if torch.is_tensor(x) and x.is_floating_point() else x for x in inputs]
    with torch.no_grad():
        fn = lambda: model(*inputs)
        out[job["name"]] = {
            "do_bench_ms": tt.do_bench(fn, return_mode="median"),
            "cudagraph_ms": tt.do_bench_cudagraph(fn, return_mode="median"),
        }
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dobench-compare.md")
    args = parser.parse_args()
    started = time.time()
    ours = {}
    with tempfile.TemporaryDirectory(prefix="dobench-") as tmp:
        folder = Path(tmp)
        for k, kernel in enumerate(KERNELS):
            candidate = folder / f"candidate_{k}.py"
            candidate.write_text(kernel.code())
            harness = kernel.harness(folder / f"h{k}", folder / "cache")
            try:
                (ours[kernel.name],) = time_candidates([kernel.code()], harness, folder / f"t{k}", crosscheck=True)
            finally:
                release(harness)
            print(f"{kernel.name}: ours {ours[kernel.name].get('ms')}", flush=True)
        jobs = [
            {
                "name": k.name,
                "problem": str(k.problem),
                "candidate": str(folder / f"candidate_{i}.py"),
                "sizes": k.sizes,
                "precision": k.precision,
            }
            for i, k in enumerate(KERNELS)
        ]
        run = subprocess.run(
            [sys.executable, "-c", DOBENCH, json.dumps(jobs)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHONPATH": ""},
        )
    if run.returncode != 0:
        print(run.stderr[-3000:], file=sys.stderr)
        return 1
    theirs = json.loads(run.stdout.strip().splitlines()[-1])
    text = render(ours, theirs, args, time.time() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


def render(ours: dict, theirs: dict, args: argparse.Namespace, seconds: float) -> str:
    gpu = next((r.get("gpu_name") for r in ours.values() if r.get("gpu_name")), None)
    lines = [
        "# Our timing against triton.testing.do_bench (separate process)",
        "",
        f"Command: `python3 benchmarks/dobench_compare.py --out {args.out.name}` ({time.strftime('%Y-%m-%d %H:%M')},"
        f" {platform.node()}, GPU {gpu or 'see gpu_slot'}, {seconds:.0f} s).",
        "",
        "| kernel | bound | ours ms | do_bench ms | ours / do_bench | do_bench_cudagraph ms | ours / cudagraph |"
        " our cudagraph ms (same process) | launch overhead in ours |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kernel in KERNELS:
        mine, other = ours.get(kernel.name, {}), theirs.get(kernel.name, {})
        ms, bench, graph = mine.get("ms"), other.get("do_bench_ms"), other.get("cudagraph_ms")
        overhead = (ms - graph) / ms if ms and graph else None
        lines.append(
            f"| {kernel.name} | {kernel.bound} | {_f(ms) if ms else mine.get('error', '-')[:80]} | {_f(bench)} | "
            f"{_ratio(ms, bench)} | {_f(graph)} | {_ratio(ms, graph)} | {_f(mine.get('cudagraph_ms'))} | "
            f"{f'{overhead:.0%}' if overhead is not None else '-'} |"
        )
    lines += [
        "",
        "Target: within 5% of do_bench above 50 us. Below that, events around an eager launch include part of the",
        "launch (Python wrapper, argument packing, the launch itself: a few us), which a CUDA-graph replay does not;",
        "the last column is (ours - cudagraph) / ours, the share of our figure that is launch overhead.",
        "",
    ]
    return "\n".join(lines)


def _f(value: object) -> str:
    return f"{value:.5f}" if isinstance(value, (int, float)) else "-"


def _ratio(a: object, b: object) -> str:
    return f"{a / b:.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else "-"


if __name__ == "__main__":
    sys.exit(main())
