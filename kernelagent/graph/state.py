"""The graph's state: small, JSON-native, and enough to resume. Code and logs live in the run folder."""

from __future__ import annotations

import operator
from typing import Annotated

# pydantic (Studio's schemas) needs typing_extensions' TypedDict before Python 3.12.
from typing_extensions import NotRequired, TypedDict


class RunInput(TypedDict):
    spec_path: str
    run_id: NotRequired[str]  # the CLI sets it (= the thread id); Studio runs get a fresh one


class RunState(TypedDict, total=False):
    spec_path: str
    run_id: str
    # Absolute here, as is every path under it (candidates, harness); the checkpoints store them relative to the runs
    # folder and resolve them where it is when loaded (checkpoints.RelocatableSaver), so a moved runs folder resumes.
    run_dir: str
    problem: dict  # Problem.to_dict()
    device: str  # the resolved device: "cuda" or "cpu"
    rounds_budget: int  # rounds per seed, fixed when the run starts
    harness: dict  # how candidates are judged: reference artifacts or the frozen, validated test
    seeds: list[dict]  # one per seed branch: {"seed": i, "candidate_path": ..., "verdict": ...}
    seed_results: Annotated[list[dict], operator.add]  # each branch adds its summary
    perf_budget: dict  # optimise_rounds, patience, target_roofline: fixed when the run starts
    timing: dict  # reference and candidate timings, roofline ceilings, autotune summary; {"skipped": why} on CPU
    optimise_history: list[dict]  # one entry per LLM optimisation round
    result: dict  # what select decided; also written to result.json


class SeedState(TypedDict, total=False):
    """One seed's branch. Its keys are its own (no reducer shared with the parent) except the output below."""

    run_dir: str
    problem: dict
    device: str
    harness: dict
    seed: int
    round: int
    candidate_path: str
    verdict: dict
    history: list[dict]  # one entry per verified round: {round, passed, failure_class, reason}
    stop_reason: str
    rounds_budget: int  # copied from the context at fan-out, so routing stays a pure function of state


class SeedOutput(TypedDict):
    seed_results: Annotated[list[dict], operator.add]
