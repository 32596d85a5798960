"""Configuration (CLI > env > .env > kernelagent.toml / pyproject > defaults), proxies, LangSmith and providers."""

from __future__ import annotations

import http.client
import io
import json
import os
import subprocess
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pydantic
import pytest
from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule
from typer.testing import CliRunner

import cli as cli_module
from kernelagent import config
from kernelagent.app import start_run
from kernelagent.errors import ConfigError, LLMUnavailable
from kernelagent.llm.client import LLMSettings, ask, chat_model, preflight, split_model
from kernelagent.sandbox import scrubbed_env

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """Each test in an empty folder, without the developer's endpoint, keys, proxies or LangSmith settings."""
    for name in list(os.environ):
        if name.upper().startswith(("OPENAI_", "KERNELAGENT_", "LANGSMITH_")) or name.upper().endswith("_PROXY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(config, "_from_dotenv", {})


def sources(resolved: config.Config) -> dict[str, tuple[object, str]]:
    return {name: (s.value, s.source) for name, s in resolved.settings.items()}


# --- precedence and files ------------------------------------------------------------------------------------------


def test_cli_beats_env_beats_dotenv_beats_toml_beats_default(tmp_path, monkeypatch):
    (tmp_path / "kernelagent.toml").write_text(
        'num_seeds = 2\nrounds_per_seed = 5\ndevice = "cpu"\ninput_draws = 2\nsizes = { N = 64 }\n'
    )
    (tmp_path / ".env").write_text("KERNELAGENT_ROUNDS_PER_SEED=6\nKERNELAGENT_INPUT_DRAWS='4' # quoted\n")
    monkeypatch.setenv("KERNELAGENT_INPUT_DRAWS", "5")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://llm.example/v1")
    resolved = config.resolve({"num_seeds": 3, "device": None})
    got = sources(resolved)
    assert got["num_seeds"] == (3, "cli")
    assert got["input_draws"] == (5, "env")  # the real environment beats .env
    assert got["rounds_per_seed"] == (6, ".env")
    assert got["device"] == ("cpu", "kernelagent.toml")  # None from the CLI means "not given"
    assert got["sizes"] == ({"N": 64}, "kernelagent.toml")
    assert got["base_url"] == ("http://llm.example/v1", "env")
    assert resolved.settings["base_url"].origin == "OPENAI_BASE_URL"
    assert got["verify_timeout_s"] == (300.0, "default")
    ctx = resolved.context()
    assert (ctx.num_seeds, ctx.rounds_per_seed, ctx.input_draws, ctx.device) == (3, 6, 5, "cpu")


def test_pyproject_section_is_read_when_there_is_no_kernelagent_toml(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.kernelagent]\nnum_seeds = 7\n')
    monkeypatch.setenv("KERNELAGENT_SIZES", "N=128,M=4")
    got = sources(config.resolve())
    assert got["num_seeds"] == (7, "pyproject")
    assert got["sizes"] == ({"N": 128, "M": 4}, "env")


def test_unknown_key_or_bad_value_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "kernelagent.toml").write_text("num_seed = 2\n")
    with pytest.raises(ConfigError, match="unknown setting 'num_seed'; did you mean 'num_seeds'"):
        config.resolve()
    done = runner.invoke(cli_module.cli, ["run", str(SOFTMAX_SPEC)])
    assert done.exit_code == 2 and "kernelagent.toml: unknown setting 'num_seed'" in done.stderr

    (tmp_path / "kernelagent.toml").write_text('device = "tpu"\n')
    with pytest.raises(ConfigError, match="key 'device': invalid value 'tpu' for device: expected one of auto"):
        config.resolve()
    (tmp_path / "kernelagent.toml").unlink()
    monkeypatch.setenv("KERNELAGENT_NUM_SEEDS", "many")
    with pytest.raises(ConfigError, match="env KERNELAGENT_NUM_SEEDS: invalid value 'many' for num_seeds"):
        config.resolve()


def test_dotenv_parsing_is_simple_and_matches_python_dotenv():
    text = ('# a comment\n\nexport A=1\nB = "two words"  \nC=\'single # not a comment\'\nD=plain # comment\n'
            'E=x=y\n')
    expected = {"A": "1", "B": "two words", "C": "single # not a comment", "D": "plain", "E": "x=y"}
    assert config.parse_dotenv(text) == expected
    dotenv = pytest.importorskip("dotenv")
    assert dict(dotenv.dotenv_values(stream=io.StringIO(text), interpolate=False)) == expected


def test_config_command_shows_sources_and_never_a_key(tmp_path, monkeypatch):
    (tmp_path / "kernelagent.toml").write_text("num_seeds = 2\n")
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-very-secret\nHTTPS_PROXY=http://bob:hunter2@proxy:3128\n")
    for name in ("OPENAI_API_KEY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)  # restored (absent) after the test, whatever .env puts there
    monkeypatch.setenv("KERNELAGENT_MODEL", "some-model")
    monkeypatch.setenv("LANGSMITH_API_KEY", "ls-secret")
    done = runner.invoke(cli_module.cli, ["config", "--rounds", "3"])
    assert done.exit_code == 0, done.output
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert rows["model"].split()[1:] == ["some-model", "env", "(KERNELAGENT_MODEL)"]
    assert rows["rounds_per_seed"].split()[1:] == ["3", "cli"]
    assert rows["num_seeds"].split()[1:3] == ["2", "kernelagent.toml"]
    assert rows["device"].split()[1:] == ["auto", "default"]
    assert "api key (OPENAI_API_KEY)  set" in done.stdout and rows["LANGSMITH_API_KEY"].split()[1:] == ["set", "env"]
    assert "http://bob:***@proxy:3128" in rows["HTTPS_PROXY"]
    for secret in ("sk-very-secret", "ls-secret", "hunter2"):
        assert secret not in done.output


def test_run_builds_its_context_through_the_configuration(scripted_llm, tmp_path, monkeypatch):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    (tmp_path / "kernelagent.toml").write_text(
        f'num_seeds = 1\nrounds_per_seed = 2\ndevice = "cpu"\ninput_draws = 1\nrequest_timeout_s = 30\n'
        f'base_url = "{server.base_url}"\nmodel = "scripted-model"\nruns_dir = "{tmp_path / "runs"}"\n'
    )
    (tmp_path / ".env").write_text("KERNELAGENT_KEY_FROM_DOTENV=sk-dotenv-secret\n")
    monkeypatch.delenv("KERNELAGENT_KEY_FROM_DOTENV", raising=False)  # restored (absent) after the test
    monkeypatch.setenv("KERNELAGENT_API_KEY_ENV", "KERNELAGENT_KEY_FROM_DOTENV")
    done = runner.invoke(cli_module.cli, ["run", str(SOFTMAX_SPEC), "--quiet", "--timeout", "60"])
    assert done.exit_code == 0, done.output
    assert done.stdout.count("\n") == 1 and done.stdout.startswith("PASSED: seed 0 after 1 round(s)")  # --quiet
    (run_json,) = (tmp_path / "runs").glob("*/run.json")
    stored = json.loads(run_json.read_text())["context"]
    assert (stored["num_seeds"], stored["rounds_per_seed"], stored["input_draws"]) == (1, 2, 1)
    assert stored["verify_timeout_s"] == 60 and stored["api_key_env"] == "KERNELAGENT_KEY_FROM_DOTENV"
    assert "sk-dotenv-secret" not in run_json.read_text()  # the key reached the client, never the run folder
    assert server.requests[-1].headers["authorization"] == "Bearer sk-dotenv-secret"


# --- proxies -------------------------------------------------------------------------------------------------------


class ForwardingProxy:
    """A tiny HTTP proxy: forwards absolute-URI requests (what clients send to a proxy) and counts them."""

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.forward()

            def do_POST(self) -> None:
                self.forward()

            def forward(self) -> None:
                proxy.forwarded.append(self.path)
                target = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "host")}
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                upstream.request(self.command, target.path, body, headers)
                reply = upstream.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for name, value in reply.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy():
    started = ForwardingProxy()
    yield started
    started.stop()


def test_http_proxy_carries_the_llm_traffic(scripted_llm, context_for, proxy, monkeypatch):
    # httpx proxies even 127.0.0.1 when HTTP_PROXY is set (no implicit localhost exception), so the scripted
    # server on 127.0.0.1 stands in for a remote endpoint.
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    result = start_run(str(SOFTMAX_SPEC), context_for(server, input_draws=1))
    assert result["status"] == "passed"
    assert proxy.forwarded == [f"{server.base_url}/chat/completions"]


def test_no_proxy_bypasses_the_proxy(scripted_llm, proxy, monkeypatch):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "x")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    settings = LLMSettings("scripted-model", server.base_url, "KERNELAGENT_TEST_KEY", max_retries=0)
    assert "softmax_kernel" in ask(settings, "s", "u", {"task": "seed", "seed": 0}).text
    assert proxy.forwarded == [] and server.count(task="seed") == 1


# --- LangSmith -----------------------------------------------------------------------------------------------------


class FakeLangSmith:
    """Accepts whatever the LangSmith SDK sends and keeps it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict, bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def reply(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.received.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PATCH = reply

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


def test_langsmith_tracing_works_through_its_standard_variables(scripted_llm, tmp_path):
    langsmith = FakeLangSmith()
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    env = cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", KERNELAGENT_MODEL="scripted-model",
                  LANGSMITH_TRACING="true", LANGSMITH_ENDPOINT=langsmith.url, LANGSMITH_API_KEY="ls-key")
    done = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "run", str(SOFTMAX_SPEC), "--device", "cpu", "--seeds", "1",
         "--draws", "1", "--runs-dir", str(tmp_path / "runs"), "--quiet"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    posts = [(headers, body) for path, headers, body in langsmith.received if path.startswith("/runs")]
    assert posts and all(headers.get("x-api-key") == "ls-key" for headers, _ in posts)
    traced = b"".join(body for _, body in posts)
    assert b"generate_seeds" in traced and b"ChatOpenAI" in traced  # the graph's nodes and the LLM calls


def test_the_sandbox_never_sees_langsmith_or_api_keys(monkeypatch):
    monkeypatch.setenv("LANGSMITH_API_KEY", "ls-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-key")
    child = scrubbed_env()
    assert "LANGSMITH_API_KEY" not in child and "OPENAI_API_KEY" not in child
    assert os.environ["LANGSMITH_API_KEY"] == "ls-key"  # scrubbing builds the child's env; ours is untouched


# --- providers -----------------------------------------------------------------------------------------------------


def test_provider_prefixes():
    assert split_model("anthropic:claude-sonnet-4-5") == ("anthropic", "claude-sonnet-4-5")
    assert split_model("qwen3-coder:30b") == (None, "qwen3-coder:30b")  # an Ollama tag, not a provider
    assert split_model("gpt-5") == (None, "gpt-5")


def test_provider_without_its_package_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)  # as if not installed, whatever is installed
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    with pytest.raises(LLMUnavailable, match="needs the langchain-anthropic package: pip install langchain-anthropic"):
        preflight(LLMSettings("anthropic:claude-sonnet-4-5", None))
    done = runner.invoke(cli_module.cli, ["run", str(SOFTMAX_SPEC), "--model", "anthropic:claude-sonnet-4-5"])
    assert done.exit_code == 3 and "pip install langchain-anthropic" in done.stderr


class RateLimitError(Exception):
    """Named like the OpenAI and Anthropic SDKs' exception: errors are mapped by class name."""


class FakeChat(pydantic.BaseModel):
    """A provider integration that takes only some of the usual options (no timeout, no base_url)."""

    model: str
    max_retries: int = 0
    api_key: str | None = None

    def invoke(self, messages: list, **kwargs: object) -> None:
        raise RateLimitError("slow down")


def test_other_providers_get_their_own_key_the_options_they_take_and_clear_errors(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_anthropic", types.SimpleNamespace(ChatAnthropic=FakeChat))
    settings = LLMSettings("anthropic:claude-test", None, max_retries=2)
    with pytest.raises(LLMUnavailable, match="no API key: set ANTHROPIC_API_KEY"):
        preflight(settings)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak")
    assert chat_model(settings) == FakeChat(model="claude-test", max_retries=2, api_key="ak")
    with pytest.raises(LLMUnavailable, match="rate limited by anthropic after 2 retries"):
        ask(settings, "s", "u", {"task": "seed"})


def test_openai_prefix_goes_to_the_openai_integration(scripted_llm, monkeypatch):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"), models=["scripted-model"])
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "x")
    settings = LLMSettings("openai:scripted-model", server.base_url, "KERNELAGENT_TEST_KEY", max_retries=0)
    assert "softmax_kernel" in ask(settings, "s", "u", {"task": "seed", "seed": 0}).text
    assert server.requests[-1].body["model"] == "scripted-model"  # the prefix chose the integration, then went
