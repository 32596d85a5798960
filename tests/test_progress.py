"""The progress view: plain lines off a terminal, a live table on one, JSON lines for CI, one line with --quiet."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule
from rich.console import Console

from kernelagent.progress import Progress, choose_mode, verdict_text

EVENTS = [
    ("run", {"run_id": "r1", "run_dir": "runs/r1"}),
    ("step", {"node": "generate_test"}),
    ("generating", {"seed": 0, "round": 0, "cached": False}),
    ("generated", {"seed": 0, "round": 0, "cached": False, "has_code": True}),
    ("generating", {"seed": 1, "round": 0, "cached": True}),
    ("generated", {"seed": 1, "round": 0, "cached": True, "has_code": True}),
    ("verdict", {"seed": 0, "round": 0, "passed": False, "failure_class": "numerical_mismatch",
                 "reason": "118 of 3200 elements differ\nsecond line", "wall_s": 2.3}),
    ("verdict", {"seed": 1, "round": 0, "passed": True, "failure_class": None, "reason": "ok", "wall_s": 0.2}),
    ("seed_finished", {"seed": 1, "passed": True, "rounds": 1, "outcome": "passed"}),
]


class Clock:
    """Seconds advance by one per reading, so elapsed times are predictable."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def feed(progress: Progress) -> Progress:
    for event, data in EVENTS:
        progress(event, data)
    return progress


def test_plain_mode_prints_one_line_per_event():
    out = io.StringIO()
    progress = feed(Progress("plain", out=out, clock=Clock()))
    lines = out.getvalue().splitlines()
    assert len(lines) == len(EVENTS)
    assert lines[0].endswith("run r1 in runs/r1")
    assert "seed 0 round 0: asking the LLM" in lines[2]
    assert "seed 1 round 0: reusing the stored reply" in lines[4]
    assert "seed 0 round 0: FAIL numerical_mismatch: 118 of 3200 elements differ (2.3s)" in lines[6]
    assert lines[7].endswith("seed 1 round 0: PASS (0.2s)")
    assert progress.totals() | {"elapsed_s": 0} == {
        "verified": 1, "seeds": 2, "failed_rounds": 1, "llm_requests": 1, "elapsed_s": 0,  # a stored reply is no request
    }
    progress.finish("PASSED: seed 1")
    assert out.getvalue().splitlines()[-1] == "PASSED: seed 1"


def test_json_mode_prints_one_object_per_event():
    out = io.StringIO()
    progress = feed(Progress("json", out=out))
    progress.finish("PASSED: seed 1", status="passed", exit_code=0)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == [e for e, _ in EVENTS] + ["finished"]
    assert records[6]["failure_class"] == "numerical_mismatch" and "elapsed_s" in records[6] and "time" in records[6]
    assert records[-1] | {"elapsed_s": 0, "time": ""} == {
        "event": "finished", "time": "", "elapsed_s": 0, "message": "PASSED: seed 1", "status": "passed",
        "exit_code": 0, "verified": 1, "seeds": 2, "failed_rounds": 1, "llm_requests": 1,
    }


def test_quiet_mode_prints_only_the_final_line():
    out = io.StringIO()
    progress = Progress("quiet", out=out)
    progress.header("kernelagent: ...")
    feed(progress).finish("FAILED: no candidate passed")
    assert out.getvalue() == "FAILED: no candidate passed\n"


def test_live_table_has_a_line_per_seed_and_a_totals_line():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=140, color_system=None)
    with feed(Progress("live", console=console, clock=Clock())) as progress:
        progress("generating", {"seed": 0, "round": 1, "cached": False})
    console.print(progress)  # the last frame, as the user's terminal keeps it
    frame = screen.getvalue().split("run r1")[-1]
    seed0 = next(line for line in frame.splitlines() if line.startswith("│ 0 "))
    seed1 = next(line for line in frame.splitlines() if line.startswith("│ 1 "))
    assert "asking the LLM" in seed0 and "FAIL numerical_mismatch: 118 of 3200 elements differ" in seed0
    assert "passed" in seed1 and "PASS" in seed1
    assert "verified 1/2 | failed rounds 1 | LLM requests 1 | elapsed" in frame


def test_mode_follows_the_terminal_and_the_flags():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert choose_mode(stream=Tty()) == "live"
    assert choose_mode(stream=io.StringIO()) == "plain"
    assert choose_mode(quiet=True, stream=Tty()) == "quiet"
    assert choose_mode(quiet=True, json_logs=True) == "json"
    long_reason = {"passed": False, "failure_class": "x", "reason": "r" * 200}
    assert len(verdict_text(long_reason)) < 90


def test_json_logs_of_a_real_run_are_machine_readable(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_off_by_one.md"), rule("r0", "refine", 0, "softmax_correct.md"))
    env = cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", KERNELAGENT_MODEL="scripted-model")
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", str(SOFTMAX_SPEC), "--device", "cpu", "--seeds", "1",
         "--draws", "1", "--runs-dir", str(tmp_path), "--json-logs"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]  # stdout holds nothing but JSON
    events = [r["event"] for r in records]
    assert events[:2] == ["start", "run"] and events[-1] == "finished"
    verdicts = [(r["round"], r["passed"]) for r in records if r["event"] == "verdict"]
    assert verdicts == [(0, False), (1, True)]
    assert {"generating", "generated", "seed_finished", "step"} <= set(events)
    final = records[-1]
    assert final["status"] == "passed" and final["exit_code"] == 0 and final["llm_requests"] == 2
    assert final["report"].endswith("report.html") and (tmp_path / final["report"]).exists()
