"""Routing functions: pure functions of state that decide the fan-out and the refine loop."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Send

from kernelagent.graph.state import RunState, SeedState
from kernelagent.verify.verdict import NOT_REFINABLE

SEED_KEYS = ("run_dir", "problem", "device", "harness", "rounds_budget")


def fan_out_seeds(state: RunState) -> list[Send]:
    """One branch per seed; each loops verify -> refine -> verify on its own."""
    shared = {key: state[key] for key in SEED_KEYS}
    return [
        Send("seed_branch", {**shared, "seed": s["seed"], "round": 0, "candidate_path": s["candidate_path"]})
        for s in state["seeds"]
    ]


def route_after_verify(state: SeedState) -> Literal["refine", "finish_seed"]:
    """Refine while the seed fails for a reason the LLM can fix, has rounds left, and no other seed has won (in
    stop-at-first-pass mode). An interpreter limit is not the kernel's bug: the seed stops and says so."""
    if state["verdict"]["passed"] or state.get("stop_reason"):
        return "finish_seed"
    if state["verdict"].get("failure_class") in NOT_REFINABLE:
        return "finish_seed"
    if state["round"] + 1 >= state["rounds_budget"]:
        return "finish_seed"
    return "refine"


def route_after_benchmark(state: RunState) -> Literal["autotune", "select"]:
    """Tuning needs timings: on CPU, or with nothing verified, go straight to select."""
    return "select" if "skipped" in state.get("timing", {"skipped": ""}) else "autotune"


def route_after_tuning(state: RunState) -> Literal["optimise", "select"]:
    """Another LLM optimisation round while rounds remain, gains keep coming, and the roofline target is not met."""
    budget = state["perf_budget"]
    history = state.get("optimise_history", [])
    if len(history) >= budget["optimise_rounds"]:
        return "select"
    recent = history[-budget["patience"]:] if budget["patience"] else []
    if len(recent) == budget["patience"] and recent and not any(h["accepted"] for h in recent):
        return "select"
    timed = [c for c in state["timing"].get("candidates", []) if "ms" in c]
    if not timed:
        return "select"
    best = min(timed, key=lambda c: c["ms"])
    if (best.get("roofline") or {}).get("fraction", 0.0) >= budget["target_roofline"]:
        return "select"
    return "optimise"
