"""Fixtures: a scripted OpenAI-compatible endpoint on 127.0.0.1 and a run context pointing at it."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import sys
import tempfile
import threading
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


# What a confined run may and may not touch: a secret outside its folder, this source tree beyond the package, the
# agent's /proc entries, its own folder and /proc entries, and torch (the Python installation). Prints one JSON object: access -> "ok" or the error's name.
_FILE_ACCESS = """
import json, os
def attempt(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({{
    "read_secret": attempt(lambda: open({secret!r}).read()),
    "list_secret_folder": attempt(lambda: os.listdir({secret_folder!r})),
    "plant_beside_secret": attempt(lambda: open({plant!r}, "w").write("x")),
    "read_source_tree_file": attempt(lambda: open({source_file!r}).read()),
    "read_package": attempt(lambda: open({package_file!r}).read()),
    "read_agent_environ": attempt(lambda: open("/proc/{agent_pid}/environ").read()),
    "read_own_proc": attempt(lambda: open("/proc/self/status").read()),
    "write_own_folder": attempt(lambda: open("mine.txt", "w").write("x")),
    "import_torch": attempt(lambda: __import__("torch")),
    "write_dev_null": attempt(lambda: open("/dev/null", "w").write("x")),
    "read_dev_urandom": attempt(lambda: open("/dev/urandom", "rb").read(8)),
    "plant_in_dev_shm": attempt(lambda: open("/dev/shm/kernelagent-probe-{agent_pid}", "w").write("x")),
    "open_a_device_node": attempt(lambda: os.close(os.open({device_node!r}, os.O_RDONLY | os.O_NONBLOCK))),
}}))
"""


@pytest.fixture
def file_access_probe():
    """Code for a sandboxed child that tries each access; the secret lives outside any run folder."""
    folder = Path(tempfile.mkdtemp(prefix="kernelagent-secret-"))
    (folder / "api_key").write_text("sk-not-for-candidates")
    yield _FILE_ACCESS.format(
        secret=str(folder / "api_key"),
        secret_folder=str(folder),
        plant=str(folder / "planted.py"),
        source_file=str(ROOT / "pyproject.toml"),
        package_file=str(ROOT / "kernelagent" / "__init__.py"),
        agent_pid=os.getpid(),
        device_node=next((n for n in ("/dev/kmsg", "/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/mem")
                          if os.path.exists(n)), "/dev/kmsg"),
    )
    shutil.rmtree(folder, ignore_errors=True)
    Path(f"/dev/shm/kernelagent-probe-{os.getpid()}").unlink(missing_ok=True)


def assert_confined(result) -> None:  # noqa: ANN001 - a SandboxResult
    from kernelagent.sandbox.reaper import landlock_abi

    if landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock: runs are not confined (SandboxResult.filesystem_confined is False)")
    assert result.filesystem_confined, result.tail()
    seen = json.loads(result.stdout)
    assert seen == {
        "read_secret": "PermissionError",
        "list_secret_folder": "PermissionError",
        "plant_beside_secret": "PermissionError",
        "read_source_tree_file": "PermissionError",
        "read_package": "ok",
        "read_agent_environ": "PermissionError",  # the agent's environment holds its API keys
        "read_own_proc": "ok",
        "write_own_folder": "ok",
        "import_torch": "ok",
        "write_dev_null": "ok",
        "read_dev_urandom": "ok",
        "plant_in_dev_shm": "PermissionError",  # a file there outlived its run
        "open_a_device_node": "PermissionError",
    }, result.tail()


def assert_unconfined(result) -> None:  # noqa: ANN001
    assert not result.filesystem_confined
    assert set(json.loads(result.stdout).values()) == {"ok"}, result.tail()


# Shared by the cold (test_sandbox) and warm (test_warm) sandbox tests, which assert the same guarantees.


def is_running(pid: int) -> bool:
    """True while pid exists and is not a zombie (an already-dead process nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()]


# Forks a grandchild that leaves our process group and session, records its pid, and would sleep forever.
SPAWN_SETSID_GRANDCHILD = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        with open("pids.txt", "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(3600)
        os._exit(0)
    while not os.path.exists("pids.txt"):
        time.sleep(0.01)
"""



@pytest.fixture
def local_http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
except OSError as exc:
    print(type(exc).__name__, exc)
    sys.exit(7)
print("connected")
"""
