"""A suite spread over every GPU of a host, measured: the same suite with 1 GPU, with 2 GPUs, and through Ray.

    python3 benchmarks/multi_gpu.py --out $OUT/multi-gpu.md            # the GPU host (2 GPUs or more)
    python3 benchmarks/multi_gpu.py --device cpu --problems 2 --out /tmp/multi-gpu.md   # the script end to end on CPU

The suite: examples/suite's 8 problems and benchmarks/problems/multi_gpu's 4, copied into one folder, at GPU sizes
(--size rows=8192 --size cols=2048; on CPU their own tiny sizes). The LLM is the SCRIPTED endpoint
(kernelagent/llm/scripted_server.py, benchmarks/problems/multi_gpu/script.json): replies come from files, real Triton
kernels, some right, some wrong, one per problem and task, so every run asks the same questions and gets the same
kernels. What is measured is the agent's own work on the GPUs
(preparing references, verifying, refining, timing), not a model.

Each configuration is one `cli.py bench` process (fresh slots, judges and caches in memory), started cold with a
compile cache of its own (Triton and inductor), as a user's first suite is: no run inherits another's compilation
(--warm instead fills one shared cache in an unmeasured pass first). --budget stops starting runs once the time is
spent (the report says which were skipped). While each runs, a thread samples nvidia-smi every 0.5 s for per-GPU
utilisation and memory. The report (Markdown at --out,
with the raw numbers in a .json beside it) gives wall times, the throughput ratio, utilisation, placements from the
suite tables, and whether the selected kernels (sha256 of the winner's code) and verdicts agree between runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kernelagent.llm.scripted_server import ScriptedLLMServer, load_script  # noqa: E402
from kernelagent.sandbox.slots import gpu_identity, visible_gpus  # noqa: E402

OURS = ROOT / "benchmarks" / "problems" / "multi_gpu"
PROBLEM_FOLDERS = (ROOT / "examples" / "suite" / "level1", OURS / "level1")
GPU_SIZES = ["--size", "rows=8192", "--size", "cols=2048"]  # 64 MiB per fp32 input; the files' own sizes are tiny
SAMPLE_EVERY_S = 0.5
MIN_RUN_S = 30  # a run is not started with less of the budget left


def main() -> int:
    args = parse_args()
    gpus = visible_gpus() if args.device == "cuda" else []
    if args.device == "cuda" and not gpus:
        sys.exit("no GPU visible (nvidia-smi -L lists none): use --device cpu for the CPU check")
    work = Path(args.work or tempfile.mkdtemp(prefix="multi-gpu-"))
    suite = assemble_suite(work / "suite")
    env = base_env(work)
    configs = plan(args, len(gpus))
    results = json.loads(Path(args.merge).read_text())["runs"] if args.merge else []
    deadline = time.monotonic() + args.budget
    with ScriptedLLMServer(load_script(OURS / "script.json")) as server:
        env |= {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "scripted", "KERNELAGENT_MODEL": "scripted-model"}
        for config in configs:
            left = deadline - time.monotonic()
            if left < MIN_RUN_S:
                note = f"not started: {args.budget:g} s budget spent (--budget, --runs)"
                results.append(config | {"status": "skipped", "note": note, "wall_s": 0.0})
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {config['name']}: {' '.join(config['options'])}", flush=True)
            result = run_config(config, args, suite, work, env, timeout_s=left)
            print(f"  -> {result['status']} in {result['wall_s']:.1f} s", flush=True)
            results.append(result)
    report = render(args, gpus, results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"gpus": gpus, "runs": results}, indent=1))
    print(report)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["status"] in ("ok", "skipped") for r in results) else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="Markdown report path (raw numbers go to .json beside it).")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--problems", type=int, default=None, help="First N problems of the suite (default: all 12).")
    parser.add_argument("--parallel", type=int, default=None, help="Problems at once (default: all of them).")
    parser.add_argument("--max-gpus", type=int, default=2, help="The multi-GPU runs use this many GPUs (default 2).")
    parser.add_argument("--runs", default="1,many,ray", help="Which runs, in order: 1, many, ray (default all).")
    parser.add_argument("--warm", action="store_true", help="One shared compile cache, filled by an unmeasured pass.")
    parser.add_argument("--budget", type=float, default=400, help="Seconds for all runs; later ones are skipped.")
    parser.add_argument("--merge", default=None, help="An earlier call's .json: its runs join this report (to split "
                        "the runs over several calls, e.g. --runs 1, then --runs many,ray --merge first.json).")
    parser.add_argument("--work", default=None, help="Folder for the runs (default: a temporary one, removed).")
    parser.add_argument("--keep", action="store_true", help="Keep the work folder.")
    return parser.parse_args()


def assemble_suite(folder: Path) -> Path:
    """One suite folder (level1/) holding both sets of problems."""
    (folder / "level1").mkdir(parents=True, exist_ok=True)
    for source in PROBLEM_FOLDERS:
        for problem in source.glob("*.py"):
            shutil.copy(problem, folder / "level1" / problem.name)
    return folder


def base_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # What is compared is the loop the suite runs for every problem: verify, refine, time. The tile sweep and the
    # LLM optimisation rounds would only add more of the same GPU work (and need replies the script does not have).
    env["KERNELAGENT_AUTOTUNE"] = "false"
    env["KERNELAGENT_OPTIMISE_ROUNDS"] = "0"
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    for variable in ("KERNELAGENT_GPUS", "KERNELAGENT_GPU_COUNT", "RAY_ADDRESS"):
        env.pop(variable, None)
    return env


def plan(args: argparse.Namespace, gpu_count: int) -> list[dict]:
    """The runs, in order. On CPU the GPU counts change nothing (CPU runs take no GPU slot): the tiny mode checks the
    script and the suite end to end, not a speedup."""
    many = min(args.max_gpus, gpu_count) if gpu_count else args.max_gpus
    known = {
        "1": {"name": "1 GPU", "gpus": 1, "executor": "local", "measured": True},
        "many": {"name": f"{many} GPUs", "gpus": many, "executor": "local", "measured": True},
        "ray": {"name": f"{many} GPUs, Ray", "gpus": many, "executor": "ray", "measured": True},
    }
    chosen = [part.strip() for part in args.runs.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in known]
    if unknown:
        sys.exit(f"--runs: unknown {unknown}; choose from 1, many, ray")
    configs = [{"name": "warm-up", "gpus": many, "executor": "local", "measured": False}] if args.warm else []
    configs += [dict(known[part]) for part in chosen]
    for config in configs:
        config["options"] = ["--gpus", str(config["gpus"]), "--executor", config["executor"]]
    return configs


def run_config(
    config: dict, args: argparse.Namespace, suite: Path, work: Path, env: dict[str, str], *, timeout_s: float
) -> dict:
    result = {"name": config["name"], "gpus": config["gpus"], "executor": config["executor"],
              "measured": config["measured"], "wall_s": 0.0}
    if config["executor"] == "ray" and not ray_installed(env):
        return result | {"status": "skipped", "note": "ray is not installed here (pip install 'ray>=2.9')"}
    suite_id = config["name"].replace(" ", "-").replace(",", "")
    cache = work / ("compile-cache" if args.warm else f"compile-cache-{suite_id}")  # cold and separate by default
    env = env | {"KERNELAGENT_TRITON_CACHE": str(cache)}
    runs_dir = work / "runs"
    command = [sys.executable, str(ROOT / "cli.py"), "bench", str(suite), "--runs-dir", str(runs_dir),
               "--suite-id", suite_id, "--seeds", "1", "--rounds", "2", "--draws", "2", "--device", args.device,
               *config["options"], "--parallel", str(args.parallel or args.problems or 12)]
    if args.problems:
        command += ["--limit", str(args.problems)]
    if args.device == "cuda":
        command += GPU_SIZES
    sampler = GpuSampler() if args.device == "cuda" else None
    started = time.perf_counter()
    status, log = run_bench(command, env, timeout_s)
    wall_s = time.perf_counter() - started
    utilisation = sampler.stop() if sampler else {}
    suite_dir = runs_dir / "suites" / suite_id
    (work / f"{suite_id}.log").write_text(log)
    table = json.loads((suite_dir / "table.json").read_text()) if (suite_dir / "table.json").exists() else {}
    rows = [problem_summary(row, suite_dir) for row in table.get("rows", [])]
    suite_file = suite_dir / "suite.json"
    entries = json.loads(suite_file.read_text()).get("problems", []) if suite_file.exists() else []
    # Written as each problem ends, so a run stopped by the budget still tells where its time went.
    walls = {e["key"]: {"status": e.get("status"), "wall_s": e.get("wall_s")} for e in entries}
    if status != "ok":
        print(log[-3000:], file=sys.stderr)
    return result | {"status": status, "wall_s": round(wall_s, 2), "utilisation": utilisation, "rows": rows,
                     "problem_walls": walls, "gpu_totals": table.get("summary", {}).get("gpus", {})}


def run_bench(command: list[str], env: dict[str, str], timeout_s: float) -> tuple[str, str]:
    """(status, output) of one `cli.py bench`; past the timeout its whole process group (judges, workers, a local
    Ray cluster) is ended, not only the CLI."""
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return ("ok" if process.returncode == 0 else f"exit {process.returncode}"), output
    except subprocess.TimeoutExpired:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                output, _ = process.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                output = ""
        return f"stopped after {timeout_s:.0f} s (budget)", output or ""


def ray_installed(env: dict[str, str]) -> bool:
    probe = subprocess.run([sys.executable, "-c", "import ray"], env=env, capture_output=True)
    return probe.returncode == 0


def problem_summary(row: dict, suite_dir: Path) -> dict:
    """A table row plus the selected kernel's fingerprint (sha256 of its code)."""
    result_path = suite_dir / str(row.get("run_id")) / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    code_path = result.get("kernel_path")  # the run's selected kernel (kernel.py), None when none passed
    code = Path(code_path).read_bytes() if code_path and Path(code_path).is_file() else None
    return {
        "problem": row["problem"],
        "verdict": row["verdict"],
        "kernel_ms": row.get("kernel_ms"),
        "eager_ms": row.get("eager_ms"),
        "placements": row.get("placements"),
        "kernel_sha256": hashlib.sha256(code).hexdigest()[:16] if code else None,
        "stages": stage_times(suite_dir / str(row.get("run_id"))),
    }


def stage_times(run_dir: Path) -> dict[str, float]:
    """Where a problem's time went, from when its files were written (s after spec.py, written at the start):
    each verdict, each timing file (timing/reference.json: eager and torch.compile; a seed's; the finals'), and
    result.json. A run leaves these anyway, so no clock of our own is needed inside the agent."""
    start = run_dir / "spec.py"
    if not start.exists():
        return {}
    t0 = start.stat().st_mtime
    files = [*sorted(run_dir.glob("seeds/*/*.verdict.json")), *sorted((run_dir / "timing").glob("*.json")),
             run_dir / "result.json"]
    stamped = {str(f.relative_to(run_dir)): round(f.stat().st_mtime - t0, 1) for f in files if f.exists()}
    return dict(sorted(stamped.items(), key=lambda item: item[1]))


class GpuSampler:
    """nvidia-smi every 0.5 s in a thread (NVML in another process: no CUDA context here)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gpu-sampler")
        self._thread.start()

    def _run(self) -> None:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return
        query = [smi, "--query-gpu=index,utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                out = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                out = ""
            for line in out.splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 3 and parts[0].isdigit():
                    try:
                        self.samples.setdefault(parts[0], []).append((float(parts[1]), float(parts[2])))
                    except ValueError:
                        continue
            self._stop.wait(SAMPLE_EVERY_S)

    def stop(self) -> dict[str, dict]:
        """{gpu index: {"mean_util_pct", "busy_pct" (samples above 10%), "peak_mem_mib", "samples"}}."""
        self._stop.set()
        self._thread.join(15)
        return {
            gpu: {
                "mean_util_pct": round(sum(u for u, _ in values) / len(values), 1),
                "busy_pct": round(100 * sum(1 for u, _ in values if u > 10) / len(values), 1),
                "peak_mem_mib": max(m for _, m in values),
                "samples": len(values),
            }
            for gpu, values in sorted(self.samples.items())
            if values
        }


# ------------------------------------------------------------------------------------------------------------ report


def render(args: argparse.Namespace, gpus: list[str], results: list[dict]) -> str:
    measured = [r for r in results if r["measured"] and r["status"] == "ok"]
    one = next((r for r in measured if r["gpus"] == 1 and r["executor"] == "local"), None)
    names = ", ".join(f"{g} = {gpu_identity(g).get('name', '?')} {gpu_identity(g).get('uuid', '')}" for g in gpus)
    lines = [
        "# A suite over several GPUs: 1 GPU vs 2 GPUs vs Ray",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; host GPUs: {names or 'none (CPU run)'}; "
        f"device {args.device}.",
        "- LLM: **SCRIPTED endpoint** (benchmarks/problems/multi_gpu/script.json: replies from files, not a model): "
        "the same kernels every run.",
        f"- Suite: examples/suite + benchmarks/problems/multi_gpu, {len(results[0].get('rows') or []) if results else 0}"
        f" problems{' at rows=8192, cols=2048' if args.device == 'cuda' else ''}, "
        f"all at once (--parallel {args.parallel or args.problems or 12}), 1 seed x 2 rounds, 2 draws, autotune "
        "and LLM optimisation off; "
        + ("one compile cache, warmed by an unmeasured pass." if args.warm else "each run cold, with its own "
           "compile cache."),
    ]
    if args.device == "cpu":
        lines.append("- **CPU run** (Triton interpreter, tiny sizes): CPU runs take no GPU slot, so the GPU counts "
                     "change nothing here; this checks the script and the suite end to end, not a speedup.")
    lines += ["", "| run | status | wall s | throughput vs 1 GPU | GPU utilisation (mean %, busy %) | peak MiB |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        ratio = f"{one['wall_s'] / r['wall_s']:.2f}x" if one and r in measured and r["wall_s"] else ""
        util = "; ".join(f"GPU {g}: {u['mean_util_pct']}, {u['busy_pct']}" for g, u in r.get("utilisation", {}).items())
        peak = "; ".join(f"{g}: {u['peak_mem_mib']:.0f}" for g, u in r.get("utilisation", {}).items())
        label = r["name"] + ("" if r["measured"] else " (not measured)")
        status = r["status"] + (f" ({r['note']})" if r.get("note") else "")
        lines.append(f"| {label} | {status} | {r['wall_s']:.1f} | {ratio} | {util} | {peak} |")
    lines += ["", *problem_wall_lines(results), *stage_lines(results), *placement_lines(results), "", *agreement_lines(measured)]
    return "\n".join(lines) + "\n"


def problem_wall_lines(results: list[dict]) -> list[str]:
    """Each problem's wall time in each run, from suite.json (also for a run the budget stopped)."""
    keys = list(dict.fromkeys(k for r in results for k in (r.get("problem_walls") or {})))
    if not keys:
        return []
    lines = ["## Per problem (wall s and status, from each suite's suite.json)", "",
             "| problem | " + " | ".join(r["name"] for r in results) + " |", "| --- |" + " --- |" * len(results)]
    for key in keys:
        cells = []
        for r in results:
            one = (r.get("problem_walls") or {}).get(key) or {}
            wall = f"{one['wall_s']:.0f} s, " if one.get("wall_s") is not None else ""
            cells.append(f"{wall}{one.get('status') or '-'}")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines + [""]


def stage_lines(results: list[dict]) -> list[str]:
    """Each problem's timeline in each run: which file was written when (s from the run's start)."""
    lines = ["## Where each problem's time went (s from its start to each file written: verdicts, timing files, "
             "result)", ""]
    for r in results:
        for row in r.get("rows") or []:
            stages = ", ".join(f"{name} {t:g}" for name, t in (row.get("stages") or {}).items())
            lines.append(f"- {r['name']}, {row['problem']}: {stages or 'no files'}")
    return lines + [""] if len(lines) > 2 else []


def placement_lines(results: list[dict]) -> list[str]:
    lines = ["## Placements (from each suite's table: verifications and timings per GPU)", ""]
    for r in results:
        totals = r.get("gpu_totals") or {}
        used = "; ".join(f"GPU {g}: {t['verify']} verifications, {t['timing']} timings, {t['problems']} problems"
                         + (f" ({t['name']})" if t.get("name") else "") for g, t in totals.items())
        lines.append(f"- {r['name']}: {used or 'no GPU placements recorded'}")
    return lines


def agreement_lines(measured: list[dict]) -> list[str]:
    if len(measured) < 2:
        return ["Fewer than two measured runs finished: nothing to compare."]
    base = {row["problem"]: row for row in measured[0]["rows"]}
    header = "| problem | verdict | selected kernel | " + " | ".join(f"{r['name']} ms" for r in measured) + " |"
    lines = ["## Selected kernels and timings per problem", "", header,
             "| --- | --- | --- | " + " | ".join("---" for _ in measured) + " |"]
    disagreements = []
    for problem, row in base.items():
        others = [{x["problem"]: x for x in r["rows"]}.get(problem, {}) for r in measured]
        same = all((o.get("verdict"), o.get("kernel_sha256")) == (row["verdict"], row["kernel_sha256"]) for o in others)
        if not same:
            disagreements.append(problem)
        times = " | ".join(f"{o['kernel_ms']:.4f}" if o.get("kernel_ms") else "" for o in others)
        kernel = (row["kernel_sha256"] or "none") + ("" if same else " (DIFFERS)")
        lines.append(f"| {problem} | {row['verdict']} | {kernel} | {times} |")
    verdict = ("all runs selected the same kernels with the same verdicts" if not disagreements
               else f"runs DISAGREE on {', '.join(disagreements)}")
    return [*lines, "", f"Agreement: {verdict}."]


if __name__ == "__main__":
    sys.exit(main())
