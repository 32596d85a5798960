"""Node optimise: one round of LLM optimisation of the fastest verified kernel; the proposal is verified and timed
exactly like any candidate, and kept only if it is faster.
"""

from __future__ import annotations

from pathlib import Path

from langgraph.runtime import Runtime

from kernelagent.graph.state import RunState
from kernelagent.llm.extract import NoCodeInReply, extract_code
from kernelagent.llm.recorded import ask_recorded
from kernelagent.nodes.benchmark import cached, fastest, measure
from kernelagent.nodes.common import llm_meta, prompt_variables, run_context, store_of
from kernelagent.prompting import render
from kernelagent.verify.front_door import Judging

MIN_GAIN = 0.02  # a proposal must be 2% faster to count as a gain: smaller differences are timing noise


def optimise(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    timing = state["timing"]
    history = list(state.get("optimise_history", []))
    round_ = len(history)
    best = fastest(timing["candidates"])
    prompt = render(
        "optimise.j2",
        **prompt_variables(state, ctx),
        best=best,
        best_code=Path(best["path"]).read_text(),
        reference=timing["reference"],
        gpu=timing["reference"].get("gpu", "the GPU"),
        tried=history,
    )
    task = f"optimise{round_}"
    reply = ask_recorded(store, task, render("system.j2"), prompt, ctx.llm_settings(), llm_meta(state, "optimise", round=round_))
    entry = {"round": round_, "label": task, "from": best["label"], "best_ms_before": best["ms"]}
    try:
        code = extract_code(reply, state["problem"]["entry"])
    except NoCodeInReply as err:
        return _record(history, entry | {"accepted": False, "outcome": f"no code: {err}"}, timing)
    path = store.write_text(f"optimise/{task}.py", code)
    verdict = cached(store.path("optimise", f"{task}.verdict.json"), lambda: dict(Judging.of(ctx).verify(
        code, state["harness"], store.path("work", "optimise", task))))
    if not verdict["passed"]:
        return _record(history, entry | {"accepted": False, "outcome": f"rejected: {verdict['failure_class']}: "
                                                                       f"{verdict['reason'][:160]}"}, timing)
    timed = measure(store, task, str(path), state["harness"], timing["reference"], timing["ceilings"])
    if "ms" not in timed:
        return _record(history, entry | {"accepted": False, "outcome": f"timing failed: {timed.get('error')}"}, timing)
    gained = timed["ms"] < best["ms"] * (1 - MIN_GAIN)
    outcome = f"{timed['ms']:.4f} ms vs {best['ms']:.4f} ms: " + ("kept" if gained else "not faster; back to the best")
    entry |= {"accepted": gained, "ms": timed["ms"], "speedup_vs_eager": timed.get("speedup_vs_eager"),
              "outcome": outcome}
    candidates = [*timing["candidates"], timed]
    return _record(history, entry, {**timing, "candidates": candidates})


def _record(history: list[dict], entry: dict, timing: dict) -> dict:
    return {"optimise_history": [*history, entry], "timing": timing}
