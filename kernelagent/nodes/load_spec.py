"""Node load_spec: parse the spec and resolve the device once, so every later step agrees on both."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from langgraph.runtime import Runtime

from kernelagent.errors import UsageError
from kernelagent.graph.state import RunState
from kernelagent.nodes.common import run_context
from kernelagent.runs.store import RunStore, new_run_id
from kernelagent.spec import load_problem


def load_spec(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    problem = load_problem(state["spec_path"])
    run_id = state.get("run_id") or new_run_id(problem.name)
    store = RunStore.at(ctx.runs_dir, run_id)
    store.root.mkdir(parents=True, exist_ok=True)
    spec_copy = store.path("spec" + Path(state["spec_path"]).suffix)
    if not spec_copy.exists():
        shutil.copy(state["spec_path"], spec_copy)
    device = resolve_device(ctx.device)
    store.update_meta(problem=problem.name, mode=problem.mode, device=device)
    return {
        "run_id": run_id,
        # Absolute, so that every path derived from it is too: the checkpoints store them relative to the runs folder.
        "run_dir": str(store.root.resolve()),
        "problem": problem.to_dict(),
        "device": device,
        "rounds_budget": ctx.rounds_per_seed,
        "perf_budget": {
            "optimise_rounds": ctx.optimise_rounds,
            "patience": ctx.optimise_patience,
            "target_roofline": ctx.target_roofline,
        },
    }


def resolve_device(requested: str) -> str:
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise UsageError("--device cuda was asked for, but no CUDA GPU is visible; use --device cpu (interpreter)")
    if requested == "auto":
        return "cuda" if available else "cpu"
    return requested
