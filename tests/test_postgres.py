"""PostgreSQL checkpoints against a real server this test starts (Debian's binaries, its own folder and port)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule

from kernelagent.checkpoints import redact, storable_url


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_server_user(argv: list[str], folder: Path) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user Debian's package creates."""
    if os.geteuid() != 0:
        return argv
    if not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as an unprivileged user")
    shutil.chown(folder, user="postgres")
    return ["runuser", "-u", "postgres", "--", *argv]


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = postgres_bin()
    if bin_dir is None:
        subprocess.run([str(ROOT / ".ci" / "install-postgres")], capture_output=True, timeout=600)
        bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are missing and .ci/install-postgres could not "
                    "install them")
    # Not under pytest's tmp_path: its parent is private to root, and the server runs as another user.
    folder = Path(tempfile.mkdtemp(prefix="kernelagent-pg-"))
    folder.chmod(0o700)
    data, port, log = folder / "data", free_port(), folder / "server.log"
    init = server_command(folder, bin_dir / "initdb", "-D", data, "-A", "trust", "-U", "kernelagent", "--no-sync")
    assert init.returncode == 0, init.stdout + init.stderr
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = server_command(folder, bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "start")
    assert start.returncode == 0, start.stdout + start.stderr + log.read_text()
    yield f"postgresql://kernelagent@127.0.0.1:{port}/postgres"
    server_command(folder, bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
    shutil.rmtree(folder, ignore_errors=True)


def server_command(folder: Path, *argv: object) -> subprocess.CompletedProcess:
    return subprocess.run(as_server_user([str(a) for a in argv], folder), capture_output=True, text=True, timeout=120)


def test_killed_run_resumes_from_postgres_in_a_fresh_process(scripted_llm, postgres_url, tmp_path):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_correct.md"),
        rule("s1", "seed", 1, "softmax_off_by_one.md"),
        rule("r1", "refine", 1, {"file": "softmax_correct.md", "delay_s": 8}, "softmax_correct.md"),
    )
    env = cli_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="test", KERNELAGENT_MODEL="scripted-model")
    args = ["run", str(SOFTMAX_SPEC), "--device", "cpu", "--runs-dir", str(tmp_path), "--draws", "1", "--seeds", "2",
            "--collect-all", "--checkpoint-url", postgres_url]
    process = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while server.count(task="refine", seed="1") == 0 or not list(tmp_path.glob("*/seeds/seed0/round0.verdict.json")):
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "the run never reached seed 1's refinement"
        time.sleep(0.2)
    time.sleep(1.5)  # seed 0's branch finishes and its writes are checkpointed
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert not (tmp_path / "checkpoints.sqlite").exists()  # the checkpoints went to PostgreSQL
    assert json.loads((run_dir / "run.json").read_text())["context"]["checkpoint_url"] == postgres_url
    assert checkpoint_count(postgres_url, run_dir.name) > 0

    # A fresh process that knows the database only through the environment.
    resumed = subprocess.run([sys.executable, str(ROOT / "cli.py"), "resume", run_dir.name, "--runs-dir",
                              str(tmp_path)], env=env | {"KERNELAGENT_CHECKPOINT_URL": postgres_url},
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "passed" and all(s["passed"] for s in result["seeds"])
    # Finished work was not repeated: no new seed requests; only the refinement lost to the kill is asked again.
    assert server.count(task="seed") == 2 and server.count(task="refine", seed="1") == 2


def checkpoint_count(url: str, thread_id: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,)).fetchone()[0]


def test_passwords_never_reach_the_run_folder():
    url = "postgresql://agent:s3cret@db.example:5432/runs"
    assert storable_url(url) == "postgresql://agent@db.example:5432/runs"
    assert "s3cret" not in redact(url) and redact(url).startswith("postgresql://agent:***@db.example")
    assert storable_url("postgresql://agent@db:5432/runs") == "postgresql://agent@db:5432/runs"
