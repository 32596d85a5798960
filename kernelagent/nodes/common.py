"""Small helpers every node uses: the run's context and store, and the prompt variables they share."""

from __future__ import annotations

from pathlib import Path

from langgraph.runtime import Runtime

from kernelagent.graph.context import RunContext, context_of
from kernelagent.runs.store import RunStore


def run_context(runtime: Runtime) -> RunContext:
    return context_of(runtime.context)


def store_of(state: dict) -> RunStore:
    return RunStore(Path(state["run_dir"]))


def prompt_variables(state: dict, ctx: RunContext) -> dict:
    """What every generation and refinement prompt gets: the problem, the reference, the device, the precision."""
    precision_note = ""
    if ctx.precision != "spec":
        precision_note = (
            f"Inputs and parameters arrive in {ctx.precision}; compute in {ctx.precision} with fp32 accumulation "
            f"and return {ctx.precision} outputs (the user asked for a {ctx.precision} kernel)."
        )
    return {"problem": state["problem"], "device": state["device"], "precision_note": precision_note}


def llm_meta(state: dict, task: str, **extra: object) -> dict:
    return {"task": task, "problem": state["problem"]["name"], **extra}
