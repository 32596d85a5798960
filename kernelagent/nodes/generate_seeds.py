"""Node generate_seeds: ask for N independent first attempts, concurrently; each becomes a seed branch (Send)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from kernelagent.graph.state import RunState
from kernelagent.llm.extract import NoCodeInReply, extract_code
from kernelagent.llm.recorded import ask_recorded
from kernelagent.nodes.common import llm_meta, prompt_variables, run_context, store_of
from kernelagent.prompting import render
from kernelagent.runs.store import RunStore, write_json
from kernelagent.verify import verdict as V


def generate_seeds(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    system = render("system.j2")
    variables = prompt_variables(state, ctx)
    write = get_stream_writer()

    def draft(seed: int) -> dict:
        prompt = render("generate_seed.j2", **variables, seed_index=seed, num_seeds=ctx.num_seeds)
        task = f"seed{seed}_round0"
        with progress_events(write, store, task, seed, 0) as saved:
            reply = ask_recorded(
                store, task, system, prompt, ctx.llm_settings(), llm_meta(state, "seed", seed=seed, round=0)
            )
            saved.update(save_candidate(store, seed, 0, reply, state["problem"]["entry"]))
        return saved

    # Each request runs in a copy of the node's context: the stream writer (and tracing) look the node up there, and
    # pool threads do not inherit it. One copy per thread: a context cannot be entered by two threads at once.
    contexts = [contextvars.copy_context() for _ in range(ctx.num_seeds)]
    with ThreadPoolExecutor(max_workers=ctx.num_seeds) as pool:
        seeds = list(pool.map(lambda seed: contexts[seed].run(draft, seed), range(ctx.num_seeds)))
    return {"seeds": seeds}


@contextmanager
def progress_events(write: StreamWriter, store: RunStore, task: str, seed: int, round_: int) -> Iterator[dict]:
    """`generating` before an LLM request and `generated` after it, for the progress view; `cached`: a stored reply
    (a resumed run), so no request is made."""
    cached = store.llm_reply(task) is not None
    write({"event": "generating", "seed": seed, "round": round_, "cached": cached})
    saved: dict = {}
    yield saved
    write({"event": "generated", "seed": seed, "round": round_, "cached": cached,
           "has_code": saved.get("candidate_path") is not None})


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
