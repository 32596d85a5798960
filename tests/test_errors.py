"""Every error a user can hit: one clear line on stderr, its documented exit code, and nothing already done lost."""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest
from conftest import SOFTMAX_SPEC, rule
from typer.testing import CliRunner

import cli as cli_module
from kernelagent.app import start_run
from kernelagent.errors import LLMUnavailable
from kernelagent.llm.client import LLMSettings, ask

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """In-process CLI calls: no endpoint, key or config from the developer's shell or folder."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "KERNELAGENT_", "LANGSMITH_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str):  # noqa: ANN201 - click's Result
    return runner.invoke(cli_module.cli, [str(a) for a in args])


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {text!r}"
    return lines[0]


def only_run(runs) -> object:  # noqa: ANN001
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


def settings_for(server, **overrides: object) -> LLMSettings:  # noqa: ANN001
    options = {"model": "scripted-model", "base_url": server.base_url, "api_key_env": "KERNELAGENT_TEST_KEY",
               "max_retries": 0, "request_timeout_s": 10}
    return LLMSettings(**(options | overrides))


def use_endpoint(monkeypatch, server) -> None:  # noqa: ANN001
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    monkeypatch.setenv("KERNELAGENT_MODEL", "scripted-model")


# --- specs ---------------------------------------------------------------------------------------------------------


def test_missing_or_empty_spec_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    missing = invoke("run", tmp_path / "nope.md")
    assert missing.exit_code == 2 and "spec file not found" in one_line(missing.stderr)
    (tmp_path / "empty.md").write_text("  \n")
    empty = invoke("run", tmp_path / "empty.md")
    assert empty.exit_code == 2 and "spec file is empty" in one_line(empty.stderr)


def test_reference_without_get_inputs_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    spec = tmp_path / "partial.md"
    spec.write_text("# Double\n\nDouble x.\n\n```python\nclass Model:\n    pass\n\ndef get_init_inputs():\n"
                    "    return []\n```\n")
    done = invoke("run", spec, "--runs-dir", tmp_path / "runs")
    assert done.exit_code == 2
    assert "missing: get_inputs" in one_line(done.stderr)
    assert not (tmp_path / "runs").exists()  # rejected before a run folder exists


def test_reference_that_raises_exits_2_naming_the_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    spec = tmp_path / "broken.md"
    spec.write_text(
        "# Broken\n\nDouble x.\n\n```python\nimport torch\nimport torch.nn as nn\n\nclass Model(nn.Module):\n"
        "    def forward(self, x):\n        raise ValueError('reference boom')\n\ndef get_inputs():\n"
        "    return [torch.randn(4)]\n\ndef get_init_inputs():\n    return []\n```\n"
    )
    done = invoke("run", spec, "--runs-dir", tmp_path / "runs", "--device", "cpu")
    assert done.exit_code == 2
    line = one_line(done.stderr)
    assert "reference failed to run" in line and "ValueError: reference boom" in line
    run_dir = only_run(tmp_path / "runs")
    assert "Traceback" in json.loads((run_dir / "run.json").read_text())["error"]  # details kept, not printed
    listing = invoke("runs", "--runs-dir", tmp_path / "runs").stdout.splitlines()
    assert listing[0].split() == ["RUN", "STATUS", "PROBLEM"]
    assert listing[1].split()[:2] == [run_dir.name, "error"]  # stopped for good, not resumable "interrupted"


# --- options -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--device", "tpu"], "--device must be auto, cuda or cpu"),
        (["--precision", "fp8"], "--precision must be spec, bf16 or fp16"),
        (["--size", "x=abc"], "--size expects NAME=INT"),
    ],
)
def test_invalid_option_values_exit_2(option, message, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    done = invoke("run", SOFTMAX_SPEC, *option)
    assert done.exit_code == 2 and message in one_line(done.stderr)


def test_resume_of_an_unknown_run_exits_2(tmp_path):
    done = invoke("resume", "no-such-run", "--runs-dir", tmp_path)
    assert done.exit_code == 2 and "no run 'no-such-run'" in one_line(done.stderr)


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # no run folder yet: the traceback goes to a temp file

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli_module.runs, "start_run", broken)
    done = invoke("run", SOFTMAX_SPEC)
    line = one_line(done.stderr)
    assert done.exit_code == 1 and "internal error: RuntimeError: a bug" in line
    traceback_file = line.rsplit("traceback: ", 1)[1].rstrip(")")
    assert traceback_file.startswith(str(tmp_path)) and "RuntimeError: a bug" in open(traceback_file).read()


# --- the LLM -------------------------------------------------------------------------------------------------------


def test_no_api_key_exits_3_before_any_work(tmp_path):
    done = invoke("run", SOFTMAX_SPEC, "--runs-dir", tmp_path / "runs")
    assert done.exit_code == 3 and "no API key: set OPENAI_API_KEY" in one_line(done.stderr)
    assert not (tmp_path / "runs").exists()


def test_unreachable_endpoint_is_llm_unavailable(monkeypatch):
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "x")
    settings = LLMSettings("m", "http://127.0.0.1:9/v1", "KERNELAGENT_TEST_KEY", max_retries=0, request_timeout_s=2)
    with pytest.raises(LLMUnavailable, match="cannot reach the LLM endpoint http://127.0.0.1:9/v1") as caught:
        ask(settings, "s", "u", {"task": "seed"})
    assert caught.value.exit_code == 3


def test_unknown_model_and_bad_key_name_the_cause(scripted_llm, monkeypatch):
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "wrong")
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"), models=["scripted-model"])
    with pytest.raises(LLMUnavailable, match="model 'gpt-nope' not found") as caught:
        ask(settings_for(server, model="gpt-nope"), "s", "u", {"task": "seed", "seed": 0})
    assert caught.value.exit_code == 3

    guarded = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"), api_key="right")
    with pytest.raises(LLMUnavailable, match="rejected the API key in KERNELAGENT_TEST_KEY"):
        ask(settings_for(guarded), "s", "u", {"task": "seed", "seed": 0})


def test_slow_endpoint_times_out_with_advice(scripted_llm, monkeypatch):
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "x")
    server = scripted_llm(rule("s0", "seed", 0, {"file": "softmax_correct.md", "delay_s": 3}))
    with pytest.raises(LLMUnavailable, match=r"no answer from .* within 0.5s .*raise --request-timeout"):
        ask(settings_for(server, request_timeout_s=0.5), "s", "u", {"task": "seed", "seed": 0})


def test_rate_limit_is_retried_then_reported(scripted_llm, monkeypatch):
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "x")
    server = scripted_llm(rule("s0", "seed", 0, {"status": 429, "retry_after": 0}))
    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="rate limited .* after 2 retries; resume the run later") as caught:
        ask(settings_for(server, max_retries=2), "s", "u", {"task": "seed", "seed": 0})
    assert caught.value.exit_code == 3
    assert server.count(task="seed") == 3  # the first request and max_retries retries, counted at the server
    assert time.monotonic() - started < 10


def test_a_429_then_success_passes(scripted_llm, context_for):
    server = scripted_llm(rule("s0", "seed", 0, {"status": 429, "retry_after": 0}, "softmax_correct.md"))
    result = start_run(str(SOFTMAX_SPEC), context_for(server, max_retries=1, input_draws=1))
    assert result["status"] == "passed"
    assert server.count(task="seed") == 2


def test_llm_failure_mid_run_leaves_an_interrupted_run_that_resume_finishes(scripted_llm, tmp_path, monkeypatch):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_off_by_one.md"),
        rule("r0", "refine", 0, {"status": 500, "message": "upstream overloaded"}, "softmax_correct.md"),
    )
    use_endpoint(monkeypatch, server)
    runs = tmp_path / "runs"
    failed = invoke("run", SOFTMAX_SPEC, "--runs-dir", runs, "--device", "cpu", "--seeds", "1", "--draws", "1",
                    "--max-retries", "0")
    assert failed.exit_code == 3
    run_dir = only_run(runs)
    line = one_line(failed.stderr)
    assert "answered HTTP 500" in line and f"python cli.py resume {run_dir.name} --runs-dir {runs}" in line

    listing = invoke("runs", "--runs-dir", runs)
    assert run_dir.name in listing.stdout and "interrupted" in listing.stdout

    resumed = invoke("resume", run_dir.name, "--runs-dir", runs)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout.strip().splitlines()[-1].startswith("PASSED")
    assert json.loads((run_dir / "result.json").read_text())["status"] == "passed"
    # The seed's reply and verdict were kept: only the failed refinement was asked again.
    assert server.count(task="seed") == 1 and server.count(task="refine") == 2


def test_no_trustworthy_test_has_its_own_exit_code(monkeypatch, tmp_path):
    """A spec without a reference whose LLM never writes a usable test: exit 8 (not 1, which means a bug), and the
    message says to add a reference."""
    from kernelagent.errors import EXIT_INTERNAL, RESUMABLE_EXIT_CODES, NoTrustworthyTest
    from kernelagent.verify import test_mode

    class Store:
        def path(self, *parts: str):
            return tmp_path.joinpath(*parts)

    monkeypatch.setattr(test_mode, "ask_recorded", lambda *a, **k: "I cannot write that test.")
    with pytest.raises(NoTrustworthyTest, match="no trustworthy test after 2 attempts") as caught:
        test_mode.generate_validated_test(
            store=Store(), problem={"name": "p", "description": "d", "reference": None}, device="cpu", settings=LLMSettings(model="m", base_url=None),
            attempts=2, timeout_s=10, cache_dir=tmp_path, meta={},
        )
    assert "Add a PyTorch reference" in str(caught.value)
    assert caught.value.exit_code == NoTrustworthyTest.exit_code == 8
    assert 8 != EXIT_INTERNAL and 8 not in RESUMABLE_EXIT_CODES
