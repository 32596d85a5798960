"""Node select: pick the winner among the seeds' results and write result.json and kernel.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from langgraph.runtime import Runtime

from kernelagent.graph.state import RunState
from kernelagent.nodes.benchmark import fastest
from kernelagent.nodes.common import run_context, store_of
from kernelagent.report import write_reports
from kernelagent.runs.store import write_json
from kernelagent.verify.verifier import release


def select(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    results = sorted(state.get("seed_results", []), key=lambda r: r["seed"])
    passing = [r for r in results if r["passed"]]
    winner = min(passing, key=ranking_key) if passing else None
    timing = state.get("timing") or {"skipped": "not benchmarked"}
    fastest_timed = fastest(timing.get("candidates", []))
    kernel_source = fastest_timed["path"] if fastest_timed else (winner or {}).get("candidate_path")
    if kernel_source:
        shutil.copy(kernel_source, store.path("kernel.py"))
    result = {
        "run_id": state["run_id"],
        "run_dir": str(store.root),
        "problem": state["problem"]["name"],
        "mode": state["problem"]["mode"],
        "device": state["device"],
        "status": "passed" if winner else "failed",
        "winner": _summary(winner) if winner else None,
        "kernel_from": fastest_timed["label"] if fastest_timed else (winner and f"seed{winner['seed']}"),
        "timings": report_timings(timing, state.get("optimise_history", [])),
        "kernel_path": str(store.path("kernel.py")) if winner else None,
        "seeds": [_summary(r) for r in results],
        "harness": {k: v for k, v in state["harness"].items() if k not in ("dir", "cache_dir")},
        "settings": {"model": ctx.model, "seeds": ctx.num_seeds, "rounds": ctx.rounds_per_seed,
                     "stop_on_first_pass": ctx.stop_on_first_pass, "precision": ctx.precision,
                     "rtol": ctx.rtol, "atol": ctx.atol, "allow_tf32": ctx.allow_tf32, "sizes": ctx.sizes},
        "tokens": token_totals(store.path("llm")),
    }
    write_json(store.path("result.json"), result)
    write_reports(store.root)
    release(state["harness"])  # nothing is judged after select: its judge processes end with the run
    store.update_meta(status=result["status"], winner=result["winner"])
    return {"result": result}


def ranking_key(seed_result: dict) -> tuple:
    """Untimed runs (CPU): fewest rounds first, then lowest seed. Timed runs keep the fastest kernel instead."""
    return (seed_result["rounds"], seed_result["seed"])


def report_timings(timing: dict, optimise_history: list[dict]) -> dict:
    """The timing section of result.json: every timed candidate, the stages, and the best."""
    if "skipped" in timing:
        return {"skipped": timing["skipped"]}
    reference = timing["reference"]
    rows = [
        {
            "label": c["label"],
            "ms": c.get("ms"),
            "speedup_vs_eager": c.get("speedup_vs_eager"),
            "speedup_vs_compile": c.get("speedup_vs_compile"),
            "roofline_fraction": (c.get("roofline") or {}).get("fraction"),
            "error": c.get("error"),
        }
        for c in timing["candidates"]
    ]
    best = fastest(timing["candidates"])
    return {
        "eager_ms": reference.get("eager_ms"),
        "compile_ms": reference.get("compile_ms"),
        "gpu": reference.get("gpu"),
        "ceilings": timing.get("ceilings"),
        "candidates": rows,
        "autotune": timing.get("autotune"),
        "optimise_rounds": [
            {k: h.get(k) for k in ("round", "ms", "speedup_vs_eager", "accepted", "outcome")} for h in optimise_history
        ],
        "best": {k: best.get(k) for k in ("label", "ms", "speedup_vs_eager", "speedup_vs_compile", "roofline")}
        if best
        else None,
    }


def _summary(seed_result: dict) -> dict:
    return {
        "seed": seed_result["seed"],
        "passed": seed_result["passed"],
        "rounds": seed_result["rounds"],
        "outcome": seed_result["outcome"],
        "candidate_path": seed_result["candidate_path"],
        "last_verdict": {k: seed_result["verdict"].get(k) for k in ("failure_class", "reason")},
        "history": seed_result["history"],
    }


def token_totals(llm_dir: Path) -> dict:
    totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0}
    for usage_file in llm_dir.glob("*.usage.json"):
        usage = json.loads(usage_file.read_text())
        totals["requests"] += 1
        totals["input_tokens"] += usage.get("input_tokens", 0)
        totals["output_tokens"] += usage.get("output_tokens", 0)
    return totals
