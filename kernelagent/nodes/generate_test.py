"""Node generate_test: build the check every candidate must pass, and freeze it before any candidate is judged.

With a PyTorch reference the product builds the check itself (reference inputs and expected outputs, computed in a
separate process). Without one, the LLM writes a test, which is validated against deliberately wrong kernels
before it may judge anything.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from langgraph.runtime import Runtime

from kernelagent.graph.state import RunState
from kernelagent.nodes.common import llm_meta, run_context, store_of
from kernelagent.verify.test_mode import generate_validated_test
from kernelagent.verify.verifier import prepare_reference, triton_cache_dir


def generate_test(state: RunState, runtime: Runtime) -> dict:
    ctx = run_context(runtime)
    store = store_of(state)
    problem = state["problem"]
    cache_dir = triton_cache_dir(Path(ctx.runs_dir))
    if problem["mode"] == "reference":
        harness = prepare_reference(
            reference_source=problem["reference"],
            harness_dir=store.path("harness"),
            device=state["device"],
            draws=ctx.input_draws,
            sizes=ctx.sizes,
            precision=ctx.precision,
            seed=input_seed(state["run_id"]),
            timeout_s=ctx.verify_timeout_s,
            cache_dir=cache_dir,
            warm=ctx.warm_workers,
        )
    else:
        harness = generate_validated_test(
            store=store,
            problem=problem,
            device=state["device"],
            settings=ctx.llm_settings(),
            attempts=ctx.test_attempts,
            timeout_s=ctx.verify_timeout_s,
            cache_dir=cache_dir,
            meta=llm_meta(state, "test"),
            warm=ctx.warm_workers,
        )
    harness["warm"] = ctx.warm_workers
    store.update_meta(harness=harness.get("summary", harness["mode"]))
    return {"harness": harness}


def input_seed(run_id: str) -> int:
    """Random per run (the run id carries random bits), stable across resumes of that run."""
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)
