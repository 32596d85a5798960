"""The graph's routing functions are pure: state in, next node out."""

from __future__ import annotations

from kernelagent.graph.routing import fan_out_seeds, route_after_benchmark, route_after_tuning, route_after_verify

BUDGET = {"optimise_rounds": 3, "patience": 2, "target_roofline": 0.9}


def seed_state(passed: bool, round_: int, budget: int = 3, stop: str | None = None) -> dict:
    state = {"verdict": {"passed": passed}, "round": round_, "rounds_budget": budget}
    return state | ({"stop_reason": stop} if stop else {})


def test_refine_loop_until_pass_budget_or_another_seed_wins():
    assert route_after_verify(seed_state(False, 0)) == "refine"
    assert route_after_verify(seed_state(True, 0)) == "finish_seed"
    assert route_after_verify(seed_state(False, 2)) == "finish_seed"  # round 3 of 3 spent
    assert route_after_verify(seed_state(False, 0, stop="seed 1 passed first")) == "finish_seed"


def test_fan_out_sends_one_branch_per_seed_with_only_its_keys():
    state = {"run_dir": "r", "problem": {}, "device": "cpu", "harness": {}, "rounds_budget": 2,
             "seeds": [{"seed": 0, "candidate_path": "a.py"}, {"seed": 1, "candidate_path": None}],
             "seed_results": [{"seed": 9}]}
    sends = fan_out_seeds(state)
    assert [s.node for s in sends] == ["seed_branch", "seed_branch"]
    assert [s.arg["seed"] for s in sends] == [0, 1] and sends[1].arg["candidate_path"] is None
    assert all("seed_results" not in s.arg and s.arg["round"] == 0 for s in sends)


def timed_state(history: list[dict], fraction: float = 0.5) -> dict:
    candidates = [{"label": "seed0/round0", "ms": 1.0, "roofline": {"fraction": fraction}}]
    return {"perf_budget": BUDGET, "optimise_history": history, "timing": {"candidates": candidates}}


def test_performance_stages_run_only_with_timings():
    assert route_after_benchmark({"timing": {"skipped": "cpu"}}) == "select"
    assert route_after_benchmark(timed_state([])) == "autotune"


def test_optimise_stops_at_rounds_patience_or_roofline_target():
    assert route_after_tuning(timed_state([])) == "optimise"
    assert route_after_tuning(timed_state([{"accepted": True}, {"accepted": False}])) == "optimise"
    assert route_after_tuning(timed_state([{"accepted": False}, {"accepted": False}])) == "select"  # patience
    assert route_after_tuning(timed_state([{"accepted": True}] * 3)) == "select"  # rounds spent
    assert route_after_tuning(timed_state([], fraction=0.93)) == "select"  # at the roofline target
    no_llm = {**timed_state([]), "perf_budget": {**BUDGET, "optimise_rounds": 0}}
    assert route_after_tuning(no_llm) == "select"
