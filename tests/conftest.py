"""Fixtures: a scripted OpenAI-compatible endpoint on 127.0.0.1 and a run context pointing at it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REPLIES = Path(__file__).resolve().parent / "replies"
SOFTMAX_SPEC = ROOT / "examples" / "softmax.md"

sys.path.insert(0, str(ROOT))

from kernelagent.graph.context import RunContext  # noqa: E402
from kernelagent.llm.scripted_server import ScriptedLLMServer  # noqa: E402


def rule(rule_id: str, task: str, seed: int, *replies: str | dict, **match: str) -> dict:
    """A script rule answering `task` for `seed` with the named reply files in order."""
    as_replies = [{"file": r} if isinstance(r, str) else r for r in replies]
    return {"id": rule_id, "match": {"meta": {"task": task, "seed": str(seed), **match}}, "replies": as_replies}


@pytest.fixture
def scripted_llm():
    """Start a scripted server with the given rules; yields a factory so each test writes its own script."""
    servers = []

    def start(*rules: dict, **extra: object) -> ScriptedLLMServer:
        server = ScriptedLLMServer({"rules": list(rules), "base_dir": str(REPLIES), **extra}).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def context_for(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "test-key")

    def make(server: ScriptedLLMServer, **overrides: object) -> RunContext:
        options = {
            "model": "scripted-model",
            "base_url": server.base_url,
            "api_key_env": "KERNELAGENT_TEST_KEY",
            "num_seeds": 1,
            "rounds_per_seed": 3,
            "device": "cpu",
            "runs_dir": str(tmp_path / "runs"),
            "max_retries": 0,
            "request_timeout_s": 20,
            "verify_timeout_s": 120,
            "input_draws": 2,
        }
        return RunContext(**(options | overrides))

    return make


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KERNELAGENT_"))}
    return env | {"PYTHONPATH": str(ROOT)} | extra
