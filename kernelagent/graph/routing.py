"""Routing functions: pure functions of state that decide the fan-out and the refine loop."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Send

from kernelagent.graph.state import RunState, SeedState

SEED_KEYS = ("run_dir", "problem", "device", "harness", "rounds_budget")


def fan_out_seeds(state: RunState) -> list[Send]:
    """One branch per seed; each loops verify -> refine -> verify on its own."""
    shared = {key: state[key] for key in SEED_KEYS}
    return [
        Send("seed_branch", {**shared, "seed": s["seed"], "round": 0, "candidate_path": s["candidate_path"]})
        for s in state["seeds"]
    ]


def route_after_verify(state: SeedState) -> Literal["refine", "finish_seed"]:
    """Refine while the seed fails, has rounds left, and no other seed has won (in stop-at-first-pass mode)."""
    if state["verdict"]["passed"] or state.get("stop_reason"):
        return "finish_seed"
    if state["round"] + 1 >= state["rounds_budget"]:
        return "finish_seed"
    return "refine"
