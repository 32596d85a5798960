"""Budgets: a run stops cleanly (exit 5) before the LLM call that would pass a limit, and resumes with a higher one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule

from kernelagent.app import resume_run, start_run
from kernelagent.budget import BudgetExceeded, Limits, usage_totals
from kernelagent.errors import UsageError
from kernelagent.graph.context import RunContext


def cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *args], env=env, capture_output=True, text=True,
                          timeout=300)


def only_run(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def test_token_limit_stops_before_the_call_and_a_higher_limit_resumes(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_off_by_one.md"), rule("r0", "refine", 0, "softmax_correct.md"))
    env = cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", KERNELAGENT_MODEL="scripted-model")
    runs = tmp_path / "runs"
    first = cli("run", str(SOFTMAX_SPEC), "--device", "cpu", "--runs-dir", str(runs), "--seeds", "1", "--rounds", "3",
                "--draws", "1", "--max-tokens", "1", env=env)

    assert first.returncode == 5, first.stdout + first.stderr
    assert "budget reached" in first.stderr and "resume" in first.stderr
    assert server.count() == 0  # stopped BEFORE the call, not after it
    run_dir = only_run(runs)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["exit_code"] == 5
    seed_call = meta["budget_stop"]["projected_tokens"]  # what the seed request was expected to cost

    # Enough for the seed request, not for the refinement after it: the run stops again, between the two calls.
    second = cli("resume", run_dir.name, "--runs-dir", str(runs), "--max-tokens", str(seed_call), env=env)
    assert second.returncode == 5, second.stdout + second.stderr
    assert server.count(task="seed") == 1 and server.count(task="refine") == 0
    assert json.loads((run_dir / "run.json").read_text())["budget_stop"]["task"] == "seed0_round1"

    third = cli("resume", run_dir.name, "--runs-dir", str(runs), "--max-tokens", "1000000", "--price-in", "2",
                "--price-out", "8", env=env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert server.count(task="seed") == 1 and server.count(task="refine") == 1  # nothing asked twice
    result = json.loads((run_dir / "result.json").read_text())
    tokens = result["tokens"]
    assert result["status"] == "passed" and tokens["requests"] == 2
    assert result["cost_usd"] == pytest.approx((tokens["input_tokens"] * 2 + tokens["output_tokens"] * 8) / 1e6)


def test_wall_limit_stops_and_wall_time_adds_up_over_resumes(scripted_llm, context_for):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    ctx = context_for(server, max_wall_s=0.001, input_draws=1)  # spent by the reference run before the first call
    with pytest.raises(BudgetExceeded, match="--max-wall") as stopped:
        start_run(str(SOFTMAX_SPEC), ctx)
    assert stopped.value.exit_code == 5 and server.count() == 0
    run_dir = only_run(Path(ctx.runs_dir))
    first_session = json.loads((run_dir / "run.json").read_text())["wall_s"]
    assert first_session > 0

    result = resume_run(run_dir.name, ctx.runs_dir, {"max_wall_s": 600})
    assert result["status"] == "passed" and server.count(task="seed") == 1
    assert result["cost_usd"] is None  # no prices: cost unknown, tokens only
    assert result["wall_s"] > first_session
    assert json.loads((run_dir / "result.json").read_text())["wall_s"] == result["wall_s"]


def test_cost_needs_prices_and_usage_adds_up(tmp_path):
    assert Limits().cost(1_000_000, 1_000_000) is None
    assert Limits(price_in_per_m=3, price_out_per_m=15).cost(2_000_000, 100_000) == pytest.approx(7.5)
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "a.usage.json").write_text(json.dumps({"input_tokens": 10, "output_tokens": 5}))
    (llm / "b.usage.json").write_text(json.dumps({"input_tokens": 7, "output_tokens": 1}))
    assert usage_totals(llm) == {"requests": 2, "input_tokens": 17, "output_tokens": 6}


def test_max_cost_without_prices_is_a_usage_error():
    with pytest.raises(UsageError, match="--max-cost needs prices") as bad:
        RunContext(max_cost_usd=1.0, price_in_per_m=0, price_out_per_m=0)
    assert bad.value.exit_code == 2
    assert RunContext(max_cost_usd=1.0, price_in_per_m=1, price_out_per_m=0).max_cost_usd == 1.0
