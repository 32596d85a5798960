"""Node generate_seeds: ask for N independent first attempts, concurrently; each becomes a seed branch (Send)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from langgraph.runtime import Runtime

from kernelagent.graph.state import RunState
from kernelagent.llm.extract import NoCodeInReply, extract_code
from kernelagent.llm.recorded import ask_recorded
from kernelagent.nodes.common import llm_meta, prompt_variables, run_context, store_of
from kernelagent.prompting import render
from kernelagent.runs.store import write_json
from kernelagent.verify import verdict as V


def generate_seeds(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    system = render("system.j2")
    variables = prompt_variables(state, ctx)

    def draft(seed: int) -> dict:
        prompt = render("generate_seed.j2", **variables, seed_index=seed, num_seeds=ctx.num_seeds)
        reply = ask_recorded(
            store, f"seed{seed}_round0", system, prompt, ctx.llm_settings(), llm_meta(state, "seed", seed=seed, round=0)
        )
        return save_candidate(store, seed, 0, reply, state["problem"]["entry"])

    with ThreadPoolExecutor(max_workers=ctx.num_seeds) as pool:
        seeds = list(pool.map(draft, range(ctx.num_seeds)))
    return {"seeds": seeds}


def save_candidate(store, seed: int, round_: int, reply: str, entry: str) -> dict:  # noqa: ANN001
    """Writes the round's module, or, for a reply without code, the no_code verdict that verify will report."""
    path = store.candidate_path(seed, round_)
    try:
        code = extract_code(reply, entry)
    except NoCodeInReply as err:
        write_json(path.with_suffix(".verdict.json"), V.failed(V.NO_CODE, str(err)))
        return {"seed": seed, "candidate_path": None}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(code)
    return {"seed": seed, "candidate_path": str(path)}
