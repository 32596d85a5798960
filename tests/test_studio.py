"""The graph as LangGraph Studio and the API server load it: `langgraph dev` from langgraph.json, driven by the SDK."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def langgraph_dev(tmp_path):
    pytest.importorskip("langgraph_sdk")  # the dev extra; the schema test below needs only langgraph
    port = free_port()
    log = (tmp_path / "langgraph-dev.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "langgraph"), "dev", "--no-browser", "--no-reload", "--port", str(port),
         "--config", str(ROOT / "langgraph.json")],
        cwd=ROOT, env=cli_env(KERNELAGENT_TEST_KEY="test-key"), stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert server.poll() is None, (tmp_path / "langgraph-dev.log").read_text()[-3000:]
            assert time.time() < deadline, "langgraph dev did not start"
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=20)


def test_langgraph_dev_serves_and_runs_the_graph(langgraph_dev, scripted_llm, tmp_path):
    import asyncio

    langgraph_sdk = pytest.importorskip("langgraph_sdk")

    llm = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    client = langgraph_sdk.get_client(url=langgraph_dev)

    async def scenario() -> tuple:
        assistants = await client.assistants.search(graph_id="kernelagent")
        assistant_id = assistants[0]["assistant_id"]
        drawing = await client.assistants.get_graph(assistant_id, xray=1)
        schemas = await client.assistants.get_schemas(assistant_id)
        thread = await client.threads.create()
        context = {"model": "scripted-model", "base_url": llm.base_url, "api_key_env": "KERNELAGENT_TEST_KEY",
                   "num_seeds": 1, "rounds_per_seed": 2, "device": "cpu", "runs_dir": str(tmp_path / "runs"),
                   "max_retries": 0, "input_draws": 2}
        final = await client.runs.wait(thread["thread_id"], assistant_id, input={"spec_path": str(SOFTMAX_SPEC)},
                                       context=context, raise_error=True)
        return drawing, schemas, final

    drawing, schemas, final = asyncio.run(scenario())
    node_ids = {node["id"] for node in drawing["nodes"]}
    assert {"load_spec", "generate_test", "generate_seeds", "select"} <= node_ids
    assert any("verify" in node for node in node_ids) and any("refine" in node for node in node_ids)
    assert "spec_path" in json.dumps(schemas["input_schema"])  # Studio's input form has its field
    knobs = json.dumps(schemas["context_schema"])
    for knob in ("model", "num_seeds", "rounds_per_seed", "device"):
        assert knob in knobs
    assert final["result"]["status"] == "passed"
    assert Path(final["result"]["kernel_path"]).exists()
    assert llm.count(task="seed") == 1


def test_the_graph_has_typed_json_schemas_for_studio():
    """Studio's input form, output view and context form come from these; on Python 3.11 a typing.TypedDict made
    pydantic raise and Studio showed no schema."""
    from kernelagent.graph.builder import build_graph

    graph = build_graph()
    assert graph.get_input_jsonschema()["required"] == ["spec_path"]
    assert {"result", "seeds", "problem"} <= set(graph.get_output_jsonschema()["properties"])
    context = graph.get_context_jsonschema()["properties"]
    assert context["num_seeds"]["type"] == "integer" and context["device"]["enum"] == ["auto", "cuda", "cpu"]
