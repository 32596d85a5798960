"""Node finish_seed: the branch's summary, gathered by the parent's reducer for select."""

from __future__ import annotations

from kernelagent.graph.state import SeedState
from kernelagent.verify.verdict import INTERPRETER_UNSUPPORTED


def finish_seed(state: SeedState) -> dict:
    verdict = state["verdict"]
    if verdict["passed"]:
        outcome = "passed"
    elif verdict.get("failure_class") == INTERPRETER_UNSUPPORTED:
        feature = (verdict.get("details") or {}).get("feature") or verdict.get("reason", "")
        outcome = (f"interpreter_unsupported: the Triton CPU interpreter cannot run {feature}; not a bug in the "
                   "kernel and not sent to refine; a GPU run (--device cuda) would judge it")
    else:
        outcome = state.get("stop_reason") or f"budget spent after {state['round'] + 1} rounds"
    return {
        "seed_results": [
            {
                "seed": state["seed"],
                "passed": verdict["passed"],
                "rounds": state["round"] + 1,
                "candidate_path": state.get("candidate_path"),
                "verdict": verdict,
                "history": state.get("history", []),
                "outcome": outcome,
            }
        ]
    }
