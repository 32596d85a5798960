"""Node optimise: one round of LLM optimisation of the incumbent kernel. A proposal that is the incumbent or any
earlier version again (comments, docstrings and layout aside) is refused before anything runs; otherwise it is
verified like any candidate, timed together with the incumbent in one interleaved call, and kept only when its
confidence interval clears the incumbent's (bench/stats.py).
"""

from __future__ import annotations

from pathlib import Path

from langgraph.runtime import Runtime

from kernelagent.bench.stats import same_as_any
from kernelagent.graph.state import RunState
from kernelagent.llm.extract import NoCodeInReply, extract_code
from kernelagent.llm.recorded import ask_recorded
from kernelagent.nodes.benchmark import cached, challenge, checks, incumbent
from kernelagent.nodes.common import llm_meta, prompt_variables, run_context, store_of
from kernelagent.prompting import render
from kernelagent.verify.front_door import Judging

# The time ratio's interval must lie below 1 - MIN_GAIN: a gain the statistics confirm but smaller than this is
# not worth a rewritten kernel. Noise itself is handled by the interval, not by this margin.
MIN_GAIN = 0.02


def optimise(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    timing = state["timing"]
    history = list(state.get("optimise_history", []))
    round_ = len(history)
    best = incumbent(timing)
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
    earlier = _versions(timing, history, best)
    repeat = same_as_any(code, [Path(path).read_text() for _, path in earlier])
    if repeat is not None:
        return _record(history, entry | {"accepted": False, "outcome": f"identical to {earlier[repeat][0]} "
                                                                       "(comments and layout aside): not timed"}, timing)
    path = store.write_text(f"optimise/{task}.py", code)
    entry["path"] = str(path)
    verdict = cached(store, f"optimise/{task}.verdict.json", lambda: dict(Judging.of(ctx).verify(
        code, state["harness"], store.path("work", "optimise", task))))
    if not verdict["passed"]:
        return _record(history, entry | {"accepted": False, "outcome": f"rejected: {verdict['failure_class']}: "
                                                                       f"{verdict['reason'][:160]}"}, timing)
    timed, holder, decision = challenge(store, task, str(path), best, state["harness"], timing["reference"],
                                        timing["ceilings"], MIN_GAIN, **checks(ctx))
    if "ms" not in timed:
        return _record(history, entry | {"accepted": False, "outcome": f"timing failed: {timed.get('error')}"}, timing)
    kept = decision["clears"]
    outcome = (f"{timed['ms']:.4f} ms vs {holder.get('ms', float('nan')):.4f} ms in one interleaved call; "
               f"{decision['why']}: " + ("kept" if kept else "not shown faster; the incumbent stays"))
    entry |= {"accepted": kept, "ms": timed["ms"], "interval": timed.get("interval"),
              "speedup_vs_eager": timed.get("speedup_vs_eager"), "decision": decision, "outcome": outcome}
    candidates = [*timing["candidates"], timed]
    return _record(history, entry, {**timing, "candidates": candidates} | ({"incumbent": task} if kept else {}))


def _versions(timing: dict, history: list[dict], best: dict) -> list[tuple[str, str]]:
    """(label, path) of the incumbent and of every version this run has already seen: timed candidates and earlier
    proposals, kept or not."""
    seen = [(best["label"], best["path"])]
    seen += [(c["label"], c["path"]) for c in timing.get("candidates", []) if c.get("path")]
    seen += [(h["label"], h["path"]) for h in history if h.get("path")]
    return seen


def _record(history: list[dict], entry: dict, timing: dict) -> dict:
    return {"optimise_history": [*history, entry], "timing": timing}
