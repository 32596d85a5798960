"""A suite's results table (CSV, JSON, Markdown) and KernelBench's fast_p, read from each run's result.json, and
where each problem's candidates ran (the GPU in every verdict and timing of its run folder)."""

from __future__ import annotations

import csv
from pathlib import Path

from kernelagent.runs.store import read_json, write_json

FAST_P_THRESHOLDS = (0.0, 1.0, 1.5, 2.0)
COLUMNS = (
    "problem", "verdict", "rounds", "speedup_vs_eager", "speedup_vs_compile", "eager_ms", "compile_ms", "kernel_ms",
    "tokens", "cost_usd", "wall_s", "placements", "run_id",
)


def problem_row(entry: dict, runs_dir: Path) -> dict:
    """One problem's line: its run's outcome, or the suite's note (error, stopped, pending) when it has none."""
    run_id = entry.get("run_id")
    result = (read_json(runs_dir / run_id / "result.json") if run_id else None) or {}
    meta = (read_json(runs_dir / run_id / "run.json") if run_id else None) or {}
    timings = result.get("timings") or {}
    best = timings.get("best") or {}
    tokens = result.get("tokens") or {}
    return {
        "problem": entry["key"],
        "verdict": result.get("status") or entry.get("status") or "pending",
        "rounds": _rounds(result),
        "speedup_vs_eager": best.get("speedup_vs_eager"),
        "speedup_vs_compile": best.get("speedup_vs_compile"),
        "eager_ms": timings.get("eager_ms"),
        "compile_ms": timings.get("compile_ms"),
        "kernel_ms": best.get("ms"),
        "tokens": (tokens.get("input_tokens", 0) + tokens.get("output_tokens", 0)) if tokens else None,
        "cost_usd": result.get("cost_usd"),
        "wall_s": meta.get("wall_s"),
        "placements": placements(runs_dir / run_id) if run_id else None,
        "run_id": run_id,
    }


def placements(run_dir: Path) -> dict | None:
    """{"verify": {gpu: verdicts}, "timing": {gpu: timed candidates}, "names": {gpu: "index uuid name"}} from the
    run folder's verdicts and timings; None where none ran pinned to a GPU (CPU runs, hosts without GPUs)."""
    found: dict = {"verify": {}, "timing": {}, "names": {}}
    for path in sorted(run_dir.rglob("*.verdict.json")):
        _count(found, "verify", ((read_json(path) or {}).get("details") or {}), "gpu")
    for path in sorted((run_dir / "timing").glob("*.json")):
        _count(found, "timing", read_json(path) or {}, "gpu_slot")
    return found if found["verify"] or found["timing"] else None


def _count(found: dict, kind: str, record: dict, key: str) -> None:
    gpu = record.get(key) if isinstance(record, dict) else None
    if gpu is None:
        return
    found[kind][str(gpu)] = found[kind].get(str(gpu), 0) + 1
    identity = " ".join(str(record[k]) for k in ("gpu_index", "gpu_uuid", "gpu_name") if record.get(k))
    if identity:
        found["names"][str(gpu)] = identity


def placements_cell(value: dict | None) -> str:
    """"verify 0:5 1:3; timing 1:2" (GPU: count)."""
    if not value:
        return ""
    parts = [f"{kind} " + " ".join(f"{gpu}:{n}" for gpu, n in sorted(value[kind].items()))
             for kind in ("verify", "timing") if value.get(kind)]
    return "; ".join(parts)


def _rounds(result: dict) -> int | None:
    """The winner's rounds when a kernel passed, else the most rounds any seed spent."""
    if result.get("winner"):
        return result["winner"]["rounds"]
    seeds = result.get("seeds") or []
    return max((s.get("rounds") or 0 for s in seeds), default=None) if seeds else None


def fast_p(rows: list[dict], p: float) -> float:
    """KernelBench's fast_p: the fraction of ALL problems that are correct and faster than eager by more than p.
    fast_0 is the fraction correct (an untimed run, as on CPU, still counts there but never above p > 0)."""
    if not rows:
        return 0.0
    hits = sum(1 for row in rows if row["verdict"] == "passed" and (p == 0 or (row["speedup_vs_eager"] or 0) > p))
    return hits / len(rows)


def summary(rows: list[dict]) -> dict:
    timed = sum(1 for row in rows if row["speedup_vs_eager"] is not None)
    costs = [row["cost_usd"] for row in rows if row["cost_usd"] is not None]
    return {
        "problems": len(rows),
        "correct": sum(1 for row in rows if row["verdict"] == "passed"),
        "timed": timed,
        **{f"fast_{p:g}": round(fast_p(rows, p), 4) for p in FAST_P_THRESHOLDS},
        "tokens": sum(row["tokens"] or 0 for row in rows),
        "cost_usd": round(sum(costs), 6) if costs else None,
        "gpus": gpu_totals(rows),
    }


def gpu_totals(rows: list[dict]) -> dict:
    """{gpu: {"verify": n, "timing": n, "problems": n, "name": ...}} over the whole suite."""
    totals: dict[str, dict] = {}
    for row in rows:
        value = row.get("placements") or {}
        for gpu in sorted(set(value.get("verify", {})) | set(value.get("timing", {}))):
            entry = totals.setdefault(gpu, {"verify": 0, "timing": 0, "problems": 0})
            entry["verify"] += value.get("verify", {}).get(gpu, 0)
            entry["timing"] += value.get("timing", {}).get(gpu, 0)
            entry["problems"] += 1
            if value.get("names", {}).get(gpu):
                entry["name"] = value["names"][gpu]
    return totals


def write_tables(suite_dir: Path, rows: list[dict]) -> dict:
    """table.csv, table.json and table.md in the suite folder; returns the summary."""
    totals = summary(rows)
    write_json(suite_dir / "table.json", {"rows": rows, "summary": totals})
    with (suite_dir / "table.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: _cell(row[k]) for k in COLUMNS} for row in rows)
    (suite_dir / "table.md").write_text(markdown(rows, totals))
    return totals


def markdown(rows: list[dict], totals: dict) -> str:
    shown = COLUMNS[:-1]  # the run id is in the CSV and JSON; too long for a readable table
    lines = ["| " + " | ".join(shown) + " |", "| " + " | ".join("---" for _ in shown) + " |"]
    lines += ["| " + " | ".join(_cell(row[k]) for k in shown) + " |" for row in rows]
    fast = ", ".join(f"{k} = {v:.3f}" for k, v in totals.items() if k.startswith("fast_"))
    lines += ["", f"{totals['correct']}/{totals['problems']} correct; {fast}."]
    if not totals["timed"]:
        lines.append("No timings (e.g. a CPU run): speedups are blank and fast_p for p > 0 is 0.")
    cost = f"${totals['cost_usd']:.4f}" if totals["cost_usd"] is not None else "unknown (no prices set)"
    lines.append(f"Tokens: {totals['tokens']}; cost: {cost}.")
    for gpu, used in totals.get("gpus", {}).items():
        name = f" ({used['name']})" if used.get("name") else ""
        lines.append(f"GPU {gpu}{name}: {used['verify']} verifications, {used['timing']} timings, "
                     f"{used['problems']} problems.")
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return placements_cell(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
