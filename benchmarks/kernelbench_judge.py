"""The trusted judge at KernelBench's published sizes: every reference prepared and one candidate judged, per problem.

    python benchmarks/kernelbench_judge.py --root ../shared/kernelbench --out benchmarks/kernelbench-judge.md

KernelBench's problem files are data (MIT): they are read from --root, never copied into this repository. For each
problem this prepares the reference in its own judge process (model, float64 twin, a first draw, the second-shape
probe) and judges one candidate through the real sandbox and judge: the reference's own forward followed by a Triton
copy kernel, run with the guard in "record" mode so that every draw is compared even though the forward computes in
PyTorch (the point is the judge's data path at full size, not the candidate). Recorded per problem: prepare time
(in the judge, and wall from the agent's side), one reference forward, the judge's and the candidate's peak host
RSS, disk used in the harness and candidate folders, draws judged, the verdict. Results are appended to a JSONL file
as they come, so a cut-off run keeps what it finished and `--resume` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kernelagent.verify import verifier  # noqa: E402

CANDIDATE_SUFFIX = '''

import triton
import triton.language as tl


@triton.jit
def _kb_copy(src, dst, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(dst + offsets, tl.load(src + offsets, mask=mask), mask=mask)


def _kb_through_triton(out):
    if isinstance(out, torch.Tensor):
        src = out.contiguous()
        dst = torch.empty_like(src)
        if src.dtype == torch.bool:
            src, dst_view = src.view(torch.uint8), dst.view(torch.uint8)
        else:
            dst_view = dst
        if src.numel():
            _kb_copy[(triton.cdiv(src.numel(), 1024),)](src, dst_view, src.numel(), BLOCK=1024)
        return dst
    if isinstance(out, (tuple, list)):
        return type(out)(_kb_through_triton(o) for o in out)
    return out


class ModelNew(Model):
    def forward(self, *args):
        return _kb_through_triton(super().forward(*args))
'''


def problems(root: Path, levels: list[int]) -> list[Path]:
    found = []
    for level in levels:
        found += sorted((root / f"level{level}").glob("*.py"), key=lambda p: int(p.name.split("_")[0]))
    return found


def judge_problem(path: Path, work: Path, device: str, timeout_s: float) -> dict:
    # One GPU for the whole problem: the reference's judge and the candidate must share a device (CUDA IPC).
    with verifier.gpu_placement(device) as gpu:
        return _judge_problem(path, work, device, timeout_s, gpu)


def _judge_problem(path: Path, work: Path, device: str, timeout_s: float, gpu: str | None) -> dict:
    level = path.parent.name
    folder = work / level / path.stem
    row: dict = {"level": level, "problem": path.stem}
    started = time.monotonic()
    try:
        harness = verifier.prepare_reference(
            reference_source=path.read_text(),
            harness_dir=folder / "harness",
            device=device,
            draws=1,
            sizes={},
            precision="spec",
            timeout_s=timeout_s,
            cache_dir=work / "triton-cache",
        )
    except Exception as err:  # noqa: BLE001 - a problem that cannot be prepared is a row, not a crash
        return row | {"prepared": False, "error": f"{type(err).__name__}: {str(err)[:300]}",
                      "prepare_wall_s": round(time.monotonic() - started, 2)}
    row |= {"prepared": True, "prepare_wall_s": round(time.monotonic() - started, 2),
            "prepare_s": harness["prepare_s"], "forward_s": harness.get("reference_forward_s"),
            "plan": harness["plan"], "warnings": harness["warnings"]}
    judge = verifier.judge_of(harness, gpu, timeout_s)
    row["judge_rss_peak_bytes"] = _peak_rss(judge.process.pid)
    code = path.read_text() + CANDIDATE_SUFFIX
    t0 = time.monotonic()
    try:
        verdict = verifier.judge_without_policy(code, harness, folder / "candidate", timeout_s=timeout_s, guard="record")
    except Exception as err:  # noqa: BLE001
        verdict = {"passed": False, "failure_class": "judge_error", "reason": f"{type(err).__name__}: {err}"[:300],
                   "details": {}}
    row["judge_rss_peak_bytes"] = max(row["judge_rss_peak_bytes"], _peak_rss(judge.process.pid))
    details = verdict.get("details", {})
    numerics_ok = details.get("draws_judged") == details.get("draws_planned") and verdict.get("rule") in (
        "runtime_torch_compute", None) and verdict.get("failure_class") in ("policy_violation", None)
    row |= {"judge_s": round(time.monotonic() - t0, 2), "verdict": verdict.get("failure_class") or "pass",
            "reason": verdict.get("reason", "")[:200], "draws_judged": details.get("draws_judged"),
            "draws_planned": details.get("draws_planned"), "numerics_ok": bool(numerics_ok),
            "candidate_rss_peak_bytes": details.get("rss_peak_bytes"), "disk_bytes": _disk(folder)}
    verifier.release(harness)
    return row


def _peak_rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def summarise(rows: list[dict], command: str, wall_s: float) -> str:
    lines = ["# The judge on KernelBench at published sizes", "", f"Command: `{command}`; {len(rows)} problems, last "
             f"call {wall_s:.0f} s.", "", "Prepare = the judge builds the model and its float64 twin, checks a first draw "
             "(twice, for determinism) and probes a second shape; wall adds the process start (import torch).", "",
             "| level | problems | prepared | all draws judged, outputs match | median / max prepare (s) | median / max "
             "prepare wall (s) | median prepare / forward | max judge RSS (GiB) | max candidate RSS (GiB) | max disk (MiB) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for level in sorted({r["level"] for r in rows}):
        mine = [r for r in rows if r["level"] == level]
        prepared = [r for r in mine if r.get("prepared")]
        prep = [r["prepare_s"] for r in prepared]
        ratios = [r["prepare_s"] / r["forward_s"] for r in prepared if r.get("forward_s")]
        walls = [r["prepare_wall_s"] for r in prepared]
        lines.append(
            f"| {level} | {len(mine)} | {len(prepared)} | {sum(r.get('numerics_ok', False) for r in mine)} | "
            f"{_f(statistics.median(prep) if prep else None)} / {_f(max(prep) if prep else None)} | "
            f"{_f(statistics.median(walls) if walls else None)} / {_f(max(walls) if walls else None)} | "
            f"{_f(statistics.median(ratios) if ratios else None, 0)} | "
            f"{_gib(max((r.get('judge_rss_peak_bytes') or 0) for r in mine))} | "
            f"{_gib(max((r.get('candidate_rss_peak_bytes') or 0) for r in mine))} | "
            f"{max((r.get('disk_bytes') or 0) for r in mine) / 2**20:.2f} |"
        )
    failures = [r for r in rows if not r.get("numerics_ok")]
    lines += ["", f"Not fully judged ({len(failures)}):", ""]
    lines += [f"- {r['level']}/{r['problem']}: {r.get('verdict', 'not prepared')}: "
              f"{_first_line(r.get('reason') or r.get('error') or '')[:160]}" for r in failures] or ["- none"]
    return "\n".join(lines) + "\n"


def _first_line(text: str) -> str:
    """A failure's first line: the rest is a traceback, which the table has no room for."""
    return text.splitlines()[0] if text else ""


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _gib(value: int) -> str:
    return f"{value / 2**30:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "kernelbench")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None, help="first N problems per run (smoke tests)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--work", type=Path, default=Path("/tmp/kernelbench-judge"))
    parser.add_argument("--jsonl", type=Path, default=Path("kernelbench-judge.jsonl"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--resume", action="store_true", help="skip problems already in --jsonl")
    parser.add_argument("--retry-failed", action="store_true",
                        help="with --resume, judge again the problems whose rows are not fully judged (after a fix)")
    parser.add_argument("--alone-workers", type=int, default=1,
                        help="problems at a time in the pass that retries out-of-memory ones (one per GPU)")
    parser.add_argument("--stop-after", type=float, default=None, help="start no new problem after this many seconds")
    args = parser.parse_args()
    done = _read_rows(args.jsonl) if args.resume else []
    retry = (lambda r: not r.get("numerics_ok")) if args.retry_failed else _out_of_memory
    if any(retry(r) for r in done):  # another try (out of memory: alone on a GPU if it fails again side by side)
        done = [r for r in done if not retry(r)]
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for r in done))
    seen = {(r["level"], r["problem"]) for r in done}
    todo = [p for p in problems(args.root, args.levels) if (p.parent.name, p.stem) not in seen][: args.limit]
    lock = threading.Lock()
    started = time.monotonic()

    def one(path: Path) -> None:
        if args.stop_after and time.monotonic() - started > args.stop_after:
            return
        row = judge_problem(path, args.work, args.device, args.timeout)
        with lock, args.jsonl.open("a") as out:
            out.write(json.dumps(row) + "\n")
        print(f"[{time.monotonic() - started:6.0f}s] {row['level']}/{row['problem']}: {row.get('verdict', 'unprepared')} "
              f"prepare {row.get('prepare_s')} s, judge {row.get('judge_s')} s", flush=True)

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(one, todo))
    # Problems that ran out of GPU memory beside others (the largest need ~50 GB each) get a second pass with one
    # problem per GPU at a time: what this table measures is one problem's needs, not this benchmark's concurrency.
    rows = _read_rows(args.jsonl)
    crowded = [r for r in rows if _out_of_memory(r)]
    if crowded:
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows if not _out_of_memory(r)))
        again = [args.root / r["level"] / f"{r['problem']}.py" for r in crowded]
        with ThreadPoolExecutor(max_workers=args.alone_workers) as pool:
            list(pool.map(one, again))
    rows = _read_rows(args.jsonl)
    command = "python benchmarks/kernelbench_judge.py " + " ".join(sys.argv[1:])
    table = summarise(rows, command, time.monotonic() - started)
    if args.out:
        args.out.write_text(table)
    print(table)
    return 0


def _out_of_memory(row: dict) -> bool:
    return "out of memory" in f"{row.get('reason', '')} {row.get('error', '')}".lower()


def _read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
