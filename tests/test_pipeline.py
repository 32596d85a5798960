"""End to end through the real graph, the real ChatOpenAI client over HTTP, and real verification on CPU."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SOFTMAX_SPEC, rule

from kernelagent.app import start_run


def test_pass_in_round_one(scripted_llm, context_for):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    result = start_run(str(SOFTMAX_SPEC), context_for(server))

    assert result["status"] == "passed"
    assert result["winner"]["rounds"] == 1
    run_dir = Path(result["kernel_path"]).parent
    assert "softmax_kernel" in (run_dir / "kernel.py").read_text()
    assert json.loads((run_dir / "result.json").read_text())["status"] == "passed"
    verdict = json.loads((run_dir / "seeds/seed0/round0.verdict.json").read_text())
    assert verdict["passed"] and verdict["details"]["launches"] >= 2  # one launch per input draw
    # The prompt carried the problem description and the reference.
    prompt = (run_dir / "llm/seed0_round0.prompt.md").read_text()
    assert "Row softmax" in prompt and "torch.softmax(x, dim=1)" in prompt
    assert server.count(task="seed") == 1 and server.count(task="refine") == 0


def test_pass_after_refinement_feeds_the_failure_back(scripted_llm, context_for):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_off_by_one.md"),
        rule("r0", "refine", 0, "softmax_correct.md"),
    )
    result = start_run(str(SOFTMAX_SPEC), context_for(server))

    assert result["status"] == "passed"
    history = result["winner"]["history"]
    assert [h["passed"] for h in history] == [False, True]
    assert history[0]["failure_class"] == "numerical_mismatch"
    refine_prompt = server.requests[-1].body["messages"][-1]["content"]
    assert "numerical_mismatch" in refine_prompt and "mask = cols < n_cols - 1" in refine_prompt
    assert "torch.softmax(x, dim=1)" in refine_prompt  # the reference goes into refinement prompts too


def test_reply_without_code_is_a_failed_round_not_a_crash(scripted_llm, context_for):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_prose_only.md"),
        rule("r0", "refine", 0, "softmax_correct.md"),
    )
    result = start_run(str(SOFTMAX_SPEC), context_for(server))

    assert result["status"] == "passed"
    first = result["winner"]["history"][0]
    assert first["failure_class"] == "no_code" and "no code block" in first["reason"]
    assert "contained no code" in server.requests[-1].body["messages"][-1]["content"]


def test_cheating_seed_loses_to_honest_seed(scripted_llm, context_for):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_torch_cheat.md"),
        rule("r0", "refine", 0, "softmax_torch_cheat.md"),
        rule("s1", "seed", 1, "softmax_correct.md"),
    )
    result = start_run(str(SOFTMAX_SPEC), context_for(server, num_seeds=2, stop_on_first_pass=False, rounds_per_seed=2))

    assert result["status"] == "passed" and result["winner"]["seed"] == 1
    cheat = next(s for s in result["seeds"] if s["seed"] == 0)
    assert not cheat["passed"] and cheat["rounds"] == 2
    assert cheat["last_verdict"]["failure_class"] == "policy_violation"


def test_cold_workers_remain_available(scripted_llm, context_for):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    result = start_run(str(SOFTMAX_SPEC), context_for(server, warm_workers=False))

    assert result["status"] == "passed" and result["harness"]["warm"] is False
