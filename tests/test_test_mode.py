"""Specs without a reference: the LLM-written test must prove it can reject wrong kernels before it judges any."""

from __future__ import annotations

from pathlib import Path

from conftest import ROOT, rule

from kernelagent.app import start_run

SPEC = ROOT / "examples" / "scaled_add.md"


def scripted_test_rule(attempt: int, reply: str) -> dict:
    return {
        "id": f"test{attempt}",
        "match": {"meta": {"task": "test", "attempt": str(attempt)}},
        "replies": [{"file": reply}],
    }


def test_loose_test_is_rejected_then_a_strict_one_judges(scripted_llm, context_for):
    server = scripted_llm(
        scripted_test_rule(0, "scaled_add_test_loose.md"),
        scripted_test_rule(1, "scaled_add_test_good.md"),
        scripted_test_rule(2, "scaled_add_test_strict.md"),
        rule("s0", "seed", 0, "scaled_add_kernel_cheat.md"),
        rule("r0", "refine", 0, "scaled_add_kernel.md"),
    )
    result = start_run(str(SPEC), context_for(server))

    assert result["mode"] == "test" and result["status"] == "passed"
    harness = result["harness"]
    assert harness["rejected_tests"] == [
        {"attempt": 0, "reason": "it passed a kernel_function that returns zeros"},
        # It computed the expected result from the inputs after the call, which the kernel may write into.
        {"attempt": 1, "reason": "it passed a kernel_function that zeroes its inputs and returns zeros"},
    ]
    assert harness["warm"] is True
    # The second test generation was told why the first was rejected.
    second_prompt = next(r for r in server.requests if r.meta.get("attempt") == "1").body["messages"][-1]["content"]
    assert "passed a kernel_function" in second_prompt
    history = result["winner"]["history"]
    assert history[0]["failure_class"] == "policy_violation"  # torch.add in kernel_function
    assert history[1]["passed"]
    verdict = (Path(result["winner"]["candidate_path"]).with_suffix(".verdict.json")).read_text()
    assert '"test_catches_1pct_error": true' in verdict
    # The frozen test is read-only and is the validated one.
    frozen = Path(harness["test_path"])
    assert "assert_close" in frozen.read_text() and not (frozen.stat().st_mode & 0o222)
