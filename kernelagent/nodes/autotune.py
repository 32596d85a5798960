"""Node autotune: sweep the fastest kernel's exposed tile/launch parameters, verify the winners, keep the fastest.

No LLM involved. Each variant that wins on time is verified exactly like any candidate before it may be kept.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from kernelagent.bench.autotune import autotune as sweep
from kernelagent.graph.state import RunState
from kernelagent.nodes.benchmark import cached, fastest, measure
from kernelagent.nodes.common import run_context, store_of
from kernelagent.verify.front_door import Judging


def autotune(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    timing = state["timing"]
    best = fastest(timing["candidates"])
    if not ctx.autotune or best is None:
        return {}
    store = store_of(state)
    harness = state["harness"]
    workdir = store.path("timing", "autotune")

    def run_sweep() -> dict:
        code = open(best["path"]).read()
        found = sweep(code, harness, workdir, verify=Judging.of(ctx).verifier(harness, workdir / "verify"))
        if found.get("improved"):
            path = store.write_text("tuned/autotuned.py", found["code"])
            found["path"] = str(path)
        found.pop("code", None)
        return found

    found = cached(store.path("timing", "autotune.json"), run_sweep)
    summary = {"from": best["label"], "label": found.get("label"), "improved": bool(found.get("improved")),
               "trials": len(found.get("trials", [])), "reason": found.get("reason") or found.get("skipped")}
    candidates = list(timing["candidates"])
    if found.get("improved"):
        label = f"{best['label']}+autotune({found['label']})"
        # Re-timed in a fresh process: the sweep's own numbers shared one process and are for ranking only.
        candidates.append(measure(store, label, found["path"], harness, timing["reference"], timing["ceilings"]))
    return {"timing": {**timing, "candidates": candidates, "autotune": summary}}
