"""Node refine (per seed): show the LLM its failed module and why it failed; the next round's module comes back."""

from __future__ import annotations

from pathlib import Path

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from kernelagent.graph.state import SeedState
from kernelagent.llm.recorded import ask_recorded
from kernelagent.nodes.common import llm_meta, prompt_variables, run_context, store_of
from kernelagent.nodes.generate_seeds import progress_events, save_candidate
from kernelagent.prompting import render


def refine(state: SeedState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    seed, next_round = state["seed"], state["round"] + 1
    previous = state.get("candidate_path")
    prompt = render(
        "refine.j2",
        **prompt_variables(state, ctx),
        round=state["round"],
        previous_code=Path(previous).read_text() if previous else "# (the previous reply contained no code)",
        verdict=state["verdict"],
        earlier_failures=[h for h in state.get("history", [])[:-1] if not h["passed"]][-5:],
    )
    task = f"seed{seed}_round{next_round}"
    with progress_events(get_stream_writer(), store, task, seed, next_round) as saved:
        reply = ask_recorded(
            store, task, render("system.j2"), prompt, ctx.llm_settings(),
            llm_meta(state, "refine", seed=seed, round=next_round),
        )
        saved.update(save_candidate(store, seed, next_round, reply, state["problem"]["entry"]))
    return {"round": next_round, "candidate_path": saved["candidate_path"]}
