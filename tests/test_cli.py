"""The CLI as a user runs it: a real process, real exit codes, SIGKILL and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule


def cli(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def llm_env(server) -> dict:  # noqa: ANN001
    return cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", KERNELAGENT_MODEL="scripted-model")


def run_args(runs: Path, *extra: str) -> list[str]:
    return ["run", str(SOFTMAX_SPEC), "--device", "cpu", "--runs-dir", str(runs), "--draws", "2", *extra]


def test_budget_exhausted_reports_failure_and_exits_nonzero(scripted_llm, tmp_path):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_off_by_one.md"), rule("r0", "refine", 0, "softmax_off_by_one.md")
    )
    done = cli(*run_args(tmp_path, "--seeds", "1", "--rounds", "2"), env=llm_env(server))

    assert done.returncode == 4, done.stdout + done.stderr
    assert "FAILED" in done.stdout
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and result["kernel_path"] is None
    assert result["seeds"][0]["outcome"] == "budget spent after 2 rounds"
    assert server.count(task="refine") == 1
    listing = cli("runs", "--runs-dir", str(tmp_path), env=llm_env(server))
    assert run_dir.name in listing.stdout and "failed" in listing.stdout


def test_no_llm_means_a_clear_error_and_no_kernel(tmp_path):
    no_key = cli(*run_args(tmp_path), env=cli_env())
    assert no_key.returncode == 3 and "no API key" in no_key.stderr

    unreachable = cli(
        *run_args(tmp_path, "--request-timeout", "2"),
        env=cli_env(OPENAI_API_KEY="x", OPENAI_BASE_URL="http://127.0.0.1:9/v1", KERNELAGENT_MODEL="m"),
    )
    assert unreachable.returncode == 3 and "cannot reach the LLM endpoint" in unreachable.stderr
    assert not list(tmp_path.glob("*/kernel.py"))


def test_malformed_spec_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_text("# Softmax\n\n```python\nclass Model:\n    pass\n```\n")
    done = cli("run", str(bad), "--runs-dir", str(tmp_path / "runs"), env=cli_env(OPENAI_API_KEY="x"))
    assert done.returncode == 2 and "missing: get_inputs, get_init_inputs" in done.stderr
    missing = cli("run", str(tmp_path / "nope.md"), env=cli_env(OPENAI_API_KEY="x"))
    assert missing.returncode == 2 and "spec file not found" in missing.stderr


def test_sigkill_mid_run_then_resume_finishes_without_repeating_work(scripted_llm, tmp_path):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_correct.md"),
        rule("s1", "seed", 1, "softmax_off_by_one.md"),
        rule("r1", "refine", 1, {"file": "softmax_correct.md", "delay_s": 8}, "softmax_correct.md"),
    )
    args = run_args(tmp_path, "--seeds", "2", "--collect-all")
    process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], env=llm_env(server),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while server.count(task="refine", seed="1") == 0 or not list(tmp_path.glob("*/seeds/seed0/round0.verdict.json")):
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "the run never reached seed 1's refinement"
        time.sleep(0.2)
    time.sleep(1.5)  # seed 0's branch finishes (finish_seed) and its writes are checkpointed
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    listing = cli("runs", "--runs-dir", str(tmp_path), env=llm_env(server))
    assert "interrupted" in listing.stdout
    seed0_verdict = run_dir / "seeds/seed0/round0.verdict.json"
    stamp = seed0_verdict.stat().st_mtime_ns

    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=llm_env(server))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "passed" and all(s["passed"] for s in result["seeds"])
    # Finished work was not repeated: no new seed requests, seed 0 not re-verified; only the lost refine repeats.
    assert server.count(task="seed") == 2
    assert server.count(task="refine", seed="1") == 2
    assert seed0_verdict.stat().st_mtime_ns == stamp
    shown = cli("show", run_dir.name, "--runs-dir", str(tmp_path), env=llm_env(server))
    assert "seed 1: passed (2 rounds)" in shown.stdout


def test_graph_command_prints_the_pipeline():
    done = cli("graph", env=cli_env())
    assert done.returncode == 0
    for node in ("load_spec", "generate_test", "generate_seeds", "verify", "refine", "select"):
        assert node in done.stdout


def test_run_help_is_whole_without_a_terminal():
    """`run --help` piped, COLUMNS unset: no option description cut with an ellipsis, no `<bool>` on a flag."""
    env = {k: v for k, v in cli_env().items() if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH")}
    done = cli("run", "--help", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "…" not in text and "<bool>" not in text
    flat = " ".join(line.strip("│ ") for line in text.splitlines())
    flat = " ".join(flat.split())
    assert "postgresql://user@host:port/db (env KERNELAGENT_CHECKPOINT_URL; default: SQLite)." in flat
    assert "Verify in warm forked workers (default) or a cold process each." in flat
    assert "USD per 1M output tokens (env KERNELAGENT_PRICE_OUT)." in flat
    for flag in ("--collect-all", "--allow-tf32", "--quiet", "--json-logs", "--autotune"):
        assert flag in text
