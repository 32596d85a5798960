"""Node autotune: sweep the incumbent kernel's exposed tile/launch parameters, verify the winners, and keep the
fastest verified variant only when, timed together with the incumbent, its interval clears the incumbent's.

No LLM involved. Each variant that wins on time is verified exactly like any candidate before it may be kept.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from kernelagent.bench.autotune import autotune as sweep
from kernelagent.graph.state import RunState
from kernelagent.nodes.benchmark import cached, checks, incumbent, positioned, slim
from kernelagent.nodes.common import run_context, store_of
from kernelagent.runs.paths import write_in_run
from kernelagent.verify.front_door import Judging


def autotune(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    timing = state["timing"]
    best = incumbent(timing)
    if not ctx.autotune or best is None:
        return {}
    store = store_of(state)
    harness = state["harness"]
    workdir = store.path("timing", "autotune")

    def run_sweep() -> dict:
        code = open(best["path"]).read()
        found = sweep(code, harness, workdir, verify=Judging.of(ctx).verifier(harness, workdir / "verify"),
                      timing_options=checks(ctx) | {"ceilings": timing["ceilings"]})
        if found.get("improved"):
            path = store.write_text("tuned/autotuned.py", found["code"])
            found["path"] = str(path)
        found.pop("code", None)
        return found

    found = cached(store, "timing/autotune.json", run_sweep)
    confirm = found.get("confirm") or {}
    summary = {"from": best["label"], "label": found.get("label"), "improved": bool(found.get("improved")),
               "trials": len(found.get("trials", [])), "reason": found.get("reason") or found.get("skipped"),
               "decision": {k: confirm.get(k) for k in ("clears", "how", "why")} if confirm else None}
    candidates = list(timing["candidates"])
    update = {"candidates": candidates, "autotune": summary}
    if found.get("improved"):
        label = f"{best['label']}+autotune({found['label']})"
        # The figure kept is the one from the call that timed it together with the incumbent, never the sweep's.
        tuned = positioned(confirm["winner"], label, found["path"], timing["reference"], timing["ceilings"])
        write_in_run(store.root, store.path("timing", f"{label.replace('/', '_')}.json"), tuned)
        candidates.append(slim(tuned))
        update["incumbent"] = label
    return {"timing": {**timing, **update}}
