"""Tests for the scripted OpenAI-compatible server, driven over real HTTP by the real langchain-openai client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from kernelagent.llm.scripted_server import ScriptedLLMServer, load_script

REPO = Path(__file__).resolve().parents[1]
FALLBACK = {"id": "fallback", "match": {}, "replies": [{"status": 400, "message": "no scripted reply"}]}


def client(server: ScriptedLLMServer, meta: str = "task=seed;seed=0", **kwargs) -> ChatOpenAI:
    options = {"api_key": "test", "model": "scripted-model", "max_retries": 0, "timeout": 5, **kwargs}
    return ChatOpenAI(base_url=server.base_url, default_headers={"X-KernelAgent-Meta": meta}, **options)


@pytest.fixture
def serve():
    servers = []

    def start(script: dict | Path) -> ScriptedLLMServer:
        servers.append(ScriptedLLMServer(script).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_invoke_returns_scripted_text_and_usage(serve):
    server = serve({"models": ["scripted-model"], "rules": [{"id": "r", "match": {}, "replies": ["hello kernel"]}]})
    reply = client(server).invoke("write a ReLU kernel")
    assert reply.content == "hello kernel"
    assert reply.usage_metadata["output_tokens"] == 3  # 12 chars / 4
    assert reply.usage_metadata["input_tokens"] > 0
    assert reply.usage_metadata["total_tokens"] == reply.usage_metadata["input_tokens"] + 3
    assert reply.response_metadata["model_name"] == "scripted-model"
    [recorded] = server.requests
    assert recorded.rule_id == "r" and recorded.status == 200
    assert recorded.headers["x-kernelagent-meta"] == "task=seed;seed=0"
    assert recorded.body["messages"][0]["content"] == "write a ReLU kernel"


def test_stream_chunks_concatenate_to_text_with_usage(serve):
    text = "```python\n@triton.jit\ndef relu_kernel(x_ptr, y_ptr, n):\n    pass\n```"
    server = serve({"rules": [{"match": {}, "replies": [text]}]})
    chunks = list(client(server, stream_usage=True).stream("go"))
    assert len(chunks) > 3
    assert "".join(chunk.content for chunk in chunks) == text
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.usage_metadata["output_tokens"] == (len(text) + 3) // 4
    assert server.requests[0].body["stream"] is True


def test_replies_consumed_in_sequence_then_last_repeats(tmp_path, serve):
    (tmp_path / "replies").mkdir()
    (tmp_path / "replies" / "good.md").write_text("from a file")
    script = {"rules": [{"id": "seq", "match": {}, "replies": ["first", {"file": "replies/good.md"},
                                                                 {"text": "last"}]}]}
    (tmp_path / "script.json").write_text(json.dumps(script))
    server = serve(load_script(tmp_path / "script.json"))
    llm = client(server)
    assert [llm.invoke("x").content for _ in range(5)] == ["first", "from a file", "last", "last", "last"]


def test_exhausted_error_gives_500(serve):
    server = serve({"rules": [{"match": {}, "replies": ["once"], "exhausted": "error"}]})
    llm = client(server)
    assert llm.invoke("x").content == "once"
    with pytest.raises(openai.InternalServerError, match="no replies left"):
        llm.invoke("x")


def test_meta_contains_model_matching_and_rule_order(serve):
    server = serve({"rules": [
        {"id": "seed1_relu", "match": {"meta": {"task": "seed", "seed": 1}, "contains": ["ReLU", "fp16"]},
         "replies": ["relu seed 1"]},
        {"id": "seed1", "match": {"meta": {"task": "seed", "seed": "1"}}, "replies": ["seed 1"]},
        {"id": "other_model", "match": {"model": "other-model"}, "replies": ["other"]},
        {"id": "any", "match": {}, "replies": ["anything"]},
        {"id": "never", "match": {}, "replies": ["shadowed by 'any'"]},
    ]})
    parts = [SystemMessage("You write kernels."), HumanMessage([{"type": "text", "text": "ReLU in "},
                                                              {"type": "text", "text": "fp16"}])]
    assert client(server, "task=seed; seed=1; round=2").invoke(parts).content == "relu seed 1"
    assert client(server, "task=seed;seed=1").invoke("ReLU only").content == "seed 1"
    assert client(server, "task=seed;seed=0", model="other-model").invoke("ReLU fp16").content == "other"
    assert client(server, "task=seed;seed=0").invoke("ReLU fp16").content == "anything"
    assert [r.rule_id for r in server.requests] == ["seed1_relu", "seed1", "other_model", "any"]


def test_no_matching_rule_is_400_that_shows_meta(serve):
    server = serve({"rules": [{"match": {"meta": {"task": "refine"}}, "replies": ["x"]}]})
    with pytest.raises(openai.BadRequestError, match="no scripted reply matched.*seed") as caught:
        client(server).invoke("x")
    assert caught.value.body["type"] == "invalid_request_error"
    assert server.requests[0].rule_id is None and server.requests[0].status == 400


def test_error_replies_raise_openai_errors(serve):
    server = serve({"rules": [{"match": {}, "replies": [{"status": 500, "message": "boom"},
                                                        {"status": 429, "retry_after": 1}, FALLBACK["replies"][0]]}]})
    llm = client(server)
    with pytest.raises(openai.InternalServerError, match="boom"):
        llm.invoke("x")
    with pytest.raises(openai.RateLimitError) as caught:
        llm.invoke("x")
    assert caught.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.BadRequestError):
        llm.invoke("x")


def test_delay_longer_than_timeout_raises_timeout_without_blocking_others(serve):
    server = serve({"rules": [{"id": "slow", "match": {"meta": {"task": "slow"}}, "replies": [{"delay_s": 2, "text": "late"}]},
                              {"id": "fast", "match": {}, "replies": ["quick"]}]})
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(client(server, "task=slow", timeout=0.5).invoke, "x")
        time.sleep(0.1)
        start = time.monotonic()
        assert client(server).invoke("x").content == "quick"  # served while the slow reply sleeps
        assert time.monotonic() - start < 0.5
        with pytest.raises(openai.APITimeoutError):
            slow.result()


def test_unknown_model_is_not_found(serve):
    server = serve({"models": ["scripted-model"], "rules": [{"match": {}, "replies": ["x"]}]})
    with pytest.raises(openai.NotFoundError) as caught:
        client(server, model="gpt-unknown").invoke("x")
    assert caught.value.code == "model_not_found"
    listed = openai.OpenAI(base_url=server.base_url, api_key="test").models.list()
    assert [m.id for m in listed.data] == ["scripted-model"]
    assert "not a model" in listed.data[0].owned_by


def test_api_key_is_checked(serve):
    server = serve({"api_key": "sekret", "rules": [{"match": {}, "replies": ["ok"]}]})
    with pytest.raises(openai.AuthenticationError):
        client(server).invoke("x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0).models.list()
    assert client(server, api_key="sekret").invoke("x").content == "ok"


def test_count_is_exact_under_concurrent_requests(serve):
    server = serve({"rules": [{"id": "n", "match": {}, "replies": [str(i) for i in range(8)], "exhausted": "error"}]})

    def ask(seed: int) -> str:
        return client(server, f"task=seed;seed={seed % 2}").invoke("x").content

    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(ask, range(8)))
    assert sorted(replies) == [str(i) for i in range(8)]  # each request took a distinct reply
    assert server.count() == 8 and server.count(task="seed") == 8
    assert server.count(task="seed", seed="1") == 4 and server.count(seed=0) == 4
    assert server.count(task="refine") == 0
    server.reset_counts()
    assert server.count() == 0 and server.requests == []


def test_cli_prints_url_and_logs_requests(tmp_path):
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"rules": [{"id": "cli", "match": {"meta": {"task": "seed"}}, "replies": ["hi"]}]}))
    log = tmp_path / "requests.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "kernelagent.llm.scripted_server", "--script", str(script), "--log", str(log)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("SCRIPTED_LLM_URL=http://127.0.0.1:"), line
        url = line.split("=", 1)[1]
        llm = ChatOpenAI(base_url=url, api_key="test", model="scripted-model", max_retries=0, timeout=5,
                         default_headers={"X-KernelAgent-Meta": "task=seed;seed=3"})
        assert llm.invoke("x").content == "hi"
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
    [entry] = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry["meta"] == {"task": "seed", "seed": "3"}
    assert entry["rule"] == "cli" and entry["status"] == 200
    assert proc.stdout.read() == ""  # exactly one line on stdout
