"""Node verify (per seed): judge this round's candidate; stop early when another seed already passed."""

from __future__ import annotations

from pathlib import Path

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from kernelagent.graph.context import RunContext
from kernelagent.graph.state import SeedState
from kernelagent.nodes.common import run_context, store_of
from kernelagent.runs.store import read_json, write_json
from kernelagent.verify.front_door import Judging

FIRST_PASS_MARKER = "first_pass.json"


def verify(state: SeedState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    seed, round_ = state["seed"], state["round"]
    verdict_path = store.candidate_path(seed, round_).with_suffix(".verdict.json")
    # A verdict already on disk (a resumed run, or a reply without code) is final for that round.
    verdict = read_json(verdict_path)
    if verdict is None:
        verdict = judge(state, ctx, store.path("work", f"seed{seed}", f"round{round_}"))
        write_json(verdict_path, verdict)
    entry = {
        "round": round_,
        "passed": verdict["passed"],
        "failure_class": verdict["failure_class"],
        "reason": verdict["reason"],
        "wall_s": verdict.get("wall_s"),
    }
    get_stream_writer()({"event": "verdict", "seed": seed, **entry})
    update: dict = {"verdict": verdict, "history": [*state.get("history", []), entry]}
    marker = store.path(FIRST_PASS_MARKER)
    if verdict["passed"] and not marker.exists():
        write_json(marker, {"seed": seed, "round": round_})
    elif not verdict["passed"] and ctx.stop_on_first_pass and marker.exists():
        update["stop_reason"] = f"stopped: seed {read_json(marker, {}).get('seed')} passed first"
    return update


def judge(state: SeedState, ctx: RunContext, workdir: Path) -> dict:
    """Verification runs where the executor puts it: in-process sandboxes (local) or Ray workers (several hosts)."""
    return dict(Judging.of(ctx).verify(Path(state["candidate_path"]).read_text(), state["harness"], workdir))
