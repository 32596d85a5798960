"""Suites: discovery, fast_p, and the whole offline example suite run, killed with SIGKILL, resumed and tabulated."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

from kernelagent.errors import UsageError
from kernelagent.llm.scripted_server import ScriptedLLMServer, load_script
from kernelagent.suite import discover, fast_p, summary, write_tables
from kernelagent.suite.tables import problem_row

SUITE = ROOT / "examples" / "suite"
BENCH_OPTIONS = ["--seeds", "1", "--rounds", "2", "--draws", "1", "--device", "cpu", "--parallel", "2"]


def row(verdict: str, speedup: float | None = None) -> dict:
    return {"verdict": verdict, "speedup_vs_eager": speedup, "cost_usd": None, "tokens": 0}


def test_fast_p_counts_correct_and_fast_over_all_problems():
    rows = [row("passed", 2.5), row("passed", 1.2), row("passed", 0.8), row("passed"), row("failed", 3.0),
            row("error")]
    assert fast_p(rows, 0) == pytest.approx(4 / 6)  # fast_0: correct, timed or not
    assert fast_p(rows, 1) == pytest.approx(2 / 6)  # a failed kernel never counts, however fast
    assert fast_p(rows, 1.5) == pytest.approx(1 / 6)
    assert fast_p(rows, 2) == pytest.approx(1 / 6)
    assert fast_p([], 1) == 0.0
    totals = summary(rows)
    assert totals["problems"] == 6 and totals["correct"] == 4 and totals["timed"] == 4
    assert totals["fast_1.5"] == pytest.approx(round(1 / 6, 4)) and totals["cost_usd"] is None


def test_table_reads_timings_tokens_and_cost_from_each_run(tmp_path):
    timed = {"status": "passed", "winner": {"rounds": 2}, "seeds": [{"rounds": 2}], "cost_usd": 0.0125,
             "tokens": {"input_tokens": 900, "output_tokens": 100},
             "timings": {"eager_ms": 0.30, "compile_ms": 0.20, "best": {"ms": 0.10, "speedup_vs_eager": 3.0,
                                                                      "speedup_vs_compile": 2.0}}}
    untimed = {"status": "failed", "winner": None, "seeds": [{"rounds": 3}, {"rounds": 1}],
               "timings": {"skipped": "CPU"}}
    for run_id, result in (("r1", timed), ("r2", untimed)):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "result.json").write_text(json.dumps(result))
        (tmp_path / run_id / "run.json").write_text(json.dumps({"wall_s": 12.5}))
    entries = [{"key": "level1/a", "run_id": "r1"}, {"key": "level1/b", "run_id": "r2"},
               {"key": "level1/c", "run_id": None, "status": "error"}]
    rows = [problem_row(entry, tmp_path) for entry in entries]
    assert rows[0] | {"run_id": None} == {
        "problem": "level1/a", "verdict": "passed", "rounds": 2, "speedup_vs_eager": 3.0, "speedup_vs_compile": 2.0,
        "eager_ms": 0.30, "compile_ms": 0.20, "kernel_ms": 0.10, "tokens": 1000, "cost_usd": 0.0125, "wall_s": 12.5,
        "placements": None, "run_id": None}
    assert (rows[1]["verdict"], rows[1]["rounds"], rows[1]["speedup_vs_eager"]) == ("failed", 3, None)
    assert rows[2]["verdict"] == "error" and rows[2]["rounds"] is None
    totals = write_tables(tmp_path, rows)
    assert totals["fast_2"] == pytest.approx(round(1 / 3, 4)) and totals["cost_usd"] == 0.0125
    assert "| level1/a | passed | 2 | 3 | 2 | 0.3 | 0.2 | 0.1 | 1000 | 0.0125 | 12.5 |" in (tmp_path / "table.md").read_text()


def test_discovery_filters_by_level_substring_and_limit(tmp_path):
    problem = "import torch.nn as nn\n\nclass Model(nn.Module):\n    pass\n"
    for relative in ("level1/10_b.py", "level1/2_a.py", "level2/1_fused.py", "level1/helpers.py", "notes/op.md",
                     "replies/answer.md", "README.md"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("def helper():\n    pass\n" if "helpers" in relative else problem)
    keys = [p.key for p in discover(tmp_path)]
    assert keys == ["level1/2_a", "level1/10_b", "level2/1_fused", "notes/op"]  # natural order; no helpers/replies
    assert [p.key for p in discover(tmp_path, level=1)] == ["level1/2_a", "level1/10_b"]
    assert [p.key for p in discover(tmp_path, substring="FUSED")] == ["level2/1_fused"]
    assert [p.key for p in discover(tmp_path, level=1, limit=1)] == ["level1/2_a"]
    with pytest.raises(UsageError, match="no problems"):
        discover(tmp_path, level=3)


def bench(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "bench", *args], env=env, capture_output=True,
                          text=True, timeout=400)


def verdicts(suite_dir: Path) -> list[tuple]:
    rows = json.loads((suite_dir / "table.json").read_text())["rows"]
    return [(r["problem"], r["verdict"], r["rounds"]) for r in rows]


def finished_keys(suite_dir: Path) -> set[str]:
    try:
        problems = json.loads((suite_dir / "suite.json").read_text())["problems"]
    except (FileNotFoundError, json.JSONDecodeError):
        return set()
    return {p["key"] for p in problems if p["status"] in ("passed", "failed")}


def finished_results(suite_dir: Path, keys: set[str]) -> list[Path]:
    problems = json.loads((suite_dir / "suite.json").read_text())["problems"]
    runs = [p["run_id"] for p in problems if p["key"] in keys]
    return [path for run_id in runs for path in suite_dir.glob(f"{run_id}/result.json")]


def test_suite_killed_mid_way_resumes_to_the_same_table(tmp_path):
    with ScriptedLLMServer(load_script(SUITE / "script.json")) as server:
        env = cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", KERNELAGENT_MODEL="scripted-model")
        full = bench(str(SUITE), "--runs-dir", str(tmp_path / "a"), "--suite-id", "full", *BENCH_OPTIONS, env=env)
        assert full.returncode == 0, full.stdout + full.stderr
        expected = verdicts(tmp_path / "a/suites/full")
        assert len(expected) == 8
        assert ("level1/4_row_sum", "passed", 2) in expected  # wrong first, fixed by refinement
        assert ("level1/6_gelu_tanh", "failed", 2) in expected and ("level1/8_mul_add", "failed", 2) in expected
        assert "6/8 correct" in full.stdout and "fast_0 = 0.750" in full.stdout

        cut_dir = tmp_path / "b/suites/cut"
        process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "bench", str(SUITE), "--runs-dir",
                                    str(tmp_path / "b"), "--suite-id", "cut", *BENCH_OPTIONS], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 300
        while len(finished_keys(cut_dir)) < 3:
            assert process.poll() is None and time.time() < deadline, "the suite ended before it could be killed"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        done_before = finished_keys(cut_dir)
        assert 3 <= len(done_before) < 8 and not (cut_dir / "table.json").exists()
        # Only problems the suite had recorded as finished: a run killed between writing its result.json and its
        # last checkpoint legitimately re-runs its final step on resume.
        stamps = {p: p.stat().st_mtime_ns for p in finished_results(cut_dir, done_before)}

        server.reset_counts()
        resumed = bench("--resume", "cut", "--runs-dir", str(tmp_path / "b"), "--parallel", "2", env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    assert verdicts(cut_dir) == expected
    # Finished problems were not redone: no request for them, their results untouched.
    for key in done_before:
        assert server.count(problem=Path(key).name) == 0, key
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    with (cut_dir / "table.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert [r["problem"] for r in rows] == [e[0] for e in expected] and rows[0]["speedup_vs_eager"] == ""
    assert "| level1/1_relu | passed | 1 |" in (cut_dir / "table.md").read_text()


def test_table_lists_where_each_problem_ran_from_its_verdicts_and_timings(tmp_path):
    """The GPU in every verdict and timing of a run folder, counted per problem and over the suite."""
    h200 = {"gpu_index": "1", "gpu_uuid": "GPU-bbbb1111", "gpu_name": "NVIDIA H200"}
    files = {
        "r1/seed0/round0.verdict.json": {"passed": False, "details": {"gpu": "0"}},
        "r1/seed1/round0.verdict.json": {"passed": True, "details": {"gpu": "1", **h200}},
        "r1/optimise/o1.verdict.json": {"passed": True, "details": {"gpu": "1", **h200}},
        "r1/timing/seed1_round0.json": {"ms": 0.1, "gpu_slot": "1", **h200},
        "r1/timing/reference.json": {"eager_ms": 0.3, "gpu_slot": "0"},
        "r2/seed0/round0.verdict.json": {"passed": True, "details": {"returncode": 0}},  # a CPU run: no GPU
    }
    for relative, content in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(json.dumps(content))
    rows = [problem_row({"key": "a", "run_id": "r1"}, tmp_path), problem_row({"key": "b", "run_id": "r2"}, tmp_path)]
    assert rows[0]["placements"] == {"verify": {"0": 1, "1": 2}, "timing": {"0": 1, "1": 1},
                                     "names": {"1": "1 GPU-bbbb1111 NVIDIA H200"}}
    assert rows[1]["placements"] is None
    totals = write_tables(tmp_path, rows)
    assert totals["gpus"]["1"] == {"verify": 2, "timing": 1, "problems": 1, "name": "1 GPU-bbbb1111 NVIDIA H200"}
    table = (tmp_path / "table.md").read_text()
    assert "| verify 0:1 1:2; timing 0:1 1:1 |" in table
    assert "GPU 1 (1 GPU-bbbb1111 NVIDIA H200): 2 verifications, 1 timings, 1 problems." in table
