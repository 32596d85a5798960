"""Operating runs: one driver per run or suite, signals, faults of the machine and the endpoint, each a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, SOFTMAX_SPEC, cli_env, rule
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Send
from test_cli import cli, llm_env, run_args

from kernelagent.checkpoints import open_saver
from kernelagent.errors import RunBusy
from kernelagent.llm.client import LLMSettings, ask
from kernelagent.runs.lock import LOCK_FILE, DriverLock, holder
from kernelagent.runs.store import write_json

SLOW_SEED = {"file": "softmax_correct.md", "delay_s": 120}


def start_cli(*args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 180) -> None:  # noqa: ANN001
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"exited {process.returncode} before {what}: {process.communicate()}"
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def only_run_dir(runs: Path) -> Path:
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and (p / "run.json").exists()]
    return run_dir


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {text!r}"
    return lines[0]


# --- one driver per run -----------------------------------------------------------------------------------------------


def test_a_second_driver_is_refused_and_a_killed_drivers_lock_is_recovered(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, SLOW_SEED, "softmax_correct.md"))
    env = llm_env(server)
    first = start_cli(*run_args(tmp_path, "--seeds", "1"), env=env)
    wait_for(lambda: server.count(task="seed") == 1, first, "the seed request")
    run_dir = only_run_dir(tmp_path)

    second = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=env)
    assert second.returncode == 7, second.stdout + second.stderr
    line = one_line(second.stderr)
    assert f"run {run_dir.name} is already being driven by pid {first.pid} on {socket.gethostname()}" in line
    listing = cli("runs", "--runs-dir", str(tmp_path), env=env)
    assert "running" in listing.stdout
    assert server.count(task="seed") == 1  # the refused driver asked nothing

    first.send_signal(signal.SIGKILL)
    first.wait()
    assert holder(run_dir) is None  # the kernel released the dead driver's lock
    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "passed"


def test_a_lock_of_another_host_holds_until_its_heartbeat_is_stale(tmp_path):
    def foreign_lock(heartbeat_age_s: float) -> None:
        owner = {"pid": 4242, "host": "other-host", "started": time.time() - 600,
                 "heartbeat": time.time() - heartbeat_age_s}
        (tmp_path / LOCK_FILE).write_text(json.dumps(owner))

    foreign_lock(heartbeat_age_s=5)
    with pytest.raises(RunBusy, match="run r1 is already being driven by pid 4242 on other-host"):
        DriverLock(tmp_path, "run r1").acquire()
    assert holder(tmp_path)["host"] == "other-host"

    foreign_lock(heartbeat_age_s=3600)  # that host died: its lock is recovered
    assert holder(tmp_path) is None
    lock = DriverLock(tmp_path, "run r1")
    lock.acquire()
    try:
        assert holder(tmp_path)["pid"] == os.getpid()
        with pytest.raises(RunBusy, match=f"pid {os.getpid()}"):
            DriverLock(tmp_path, "run r1").acquire()  # a second driver in the same process is refused too
    finally:
        lock.release()
    assert holder(tmp_path) is None


def test_a_second_bench_driver_is_refused(scripted_llm, tmp_path):
    problems = tmp_path / "problems"
    problems.mkdir()
    (problems / "softmax.md").write_text(SOFTMAX_SPEC.read_text())
    server = scripted_llm(rule("s0", "seed", 0, SLOW_SEED))
    env = llm_env(server)
    runs = tmp_path / "runs"
    first = start_cli("bench", str(problems), "--runs-dir", str(runs), "--suite-id", "s1", "--seeds", "1",
                      "--draws", "1", "--device", "cpu", env=env)
    wait_for(lambda: server.count(task="seed") == 1, first, "the seed request")
    second = cli("bench", "--resume", "s1", "--runs-dir", str(runs), env=env)
    first.kill()
    first.wait()
    assert second.returncode == 7, second.stdout + second.stderr
    assert f"suite s1 is already being driven by pid {first.pid}" in one_line(second.stderr)
    assert server.count(task="seed") == 1


# --- stop signals -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_a_run_as_ctrl_c_does(signum, code, scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, SLOW_SEED, "softmax_correct.md"))
    env = llm_env(server)
    process = start_cli(*run_args(tmp_path, "--seeds", "1"), env=env)
    wait_for(lambda: server.count(task="seed") == 1, process, "the seed request")
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert time.monotonic() - sent < 30  # it does not wait for the 120 s reply in flight
    run_dir = only_run_dir(tmp_path)
    name = signal.Signals(signum).name
    assert one_line(stderr) == (f"terminated by {name}; the run is kept: python cli.py resume {run_dir.name} "
                                f"--runs-dir {tmp_path}")
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["error"] == f"terminated by {name}" and meta["exit_code"] == code
    if signum == signal.SIGTERM:
        resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=env)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert server.count(task="seed") == 2  # the request cut short, asked again


# --- an endpoint answering 200 with garbage ---------------------------------------------------------------------------

GARBAGE = {
    "html": {"raw": "<html><body><h1>Proxy login</h1></body></html>", "content_type": "text/html"},
    "malformed_json": {"raw": '{"id": "chatcmpl-1", "choices": [', "content_type": "application/json"},
    "event_stream": {"raw": 'data: {"choices": []}\n\ndata: [DONE]\n\n', "content_type": "text/event-stream"},
    "no_choices": {"raw": '{"object": "chat.completion", "choices": []}', "content_type": "application/json"},
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_a_garbage_answer_is_retried_like_a_server_error(kind, scripted_llm, monkeypatch):
    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "x")
    server = scripted_llm(rule("s0", "seed", 0, GARBAGE[kind], "softmax_correct.md"))
    settings = LLMSettings("scripted-model", server.base_url, "KERNELAGENT_TEST_KEY", max_retries=1,
                           request_timeout_s=10)
    reply = ask(settings, "s", "u", {"task": "seed", "seed": 0})
    assert "ModelNew" in reply.text
    assert server.count(task="seed") == 2


def test_garbage_after_every_retry_is_a_resumable_stop(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, GARBAGE["html"], GARBAGE["html"], "softmax_correct.md"))
    env = llm_env(server)
    stopped = cli(*run_args(tmp_path, "--seeds", "1", "--max-retries", "1"), env=env)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    run_dir = only_run_dir(tmp_path)
    line = one_line(stopped.stderr)
    assert "answered with something that is not a chat completion" in line and "Proxy login" in line
    assert line.endswith(f"python cli.py resume {run_dir.name} --runs-dir {tmp_path}")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert server.count(task="seed") == 2  # the first answer and one retry

    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "passed"


# --- faults of the machine: one line, exit 6, nothing lost -------------------------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path):
    """A real filesystem of the given size at tmp_path/fs (tmpfs; needs the right to mount, else the test skips)."""
    mounted = []

    def mount(size: str) -> Path:
        folder = tmp_path / "fs"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): run as root to test full/read-only disks")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_is_one_line_and_the_run_resumes_once_there_is_space(scripted_llm, small_filesystem, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    env = llm_env(server)
    runs = small_filesystem("64k")  # the spec and the checkpoint fit; the reference's outputs do not
    full = cli(*run_args(runs, "--seeds", "1"), env=env)
    assert full.returncode == 6, full.stdout + full.stderr
    line = one_line(full.stderr)
    assert "no space left on the device" in line and "free some space, then resume" in line
    run_dir = only_run_dir(runs)
    assert f"python cli.py resume {run_dir.name}" in line

    subprocess.run(["mount", "-o", "remount,size=64m", str(runs)], check=True)
    resumed = cli("resume", run_dir.name, "--runs-dir", str(runs), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "passed"


def test_a_read_only_runs_folder_is_one_line_exit_6(small_filesystem, tmp_path):
    runs = small_filesystem("1m")
    subprocess.run(["mount", "-o", "remount,ro", str(runs)], check=True)
    done = cli(*run_args(runs), env=cli_env(OPENAI_API_KEY="x", OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert done.returncode == 6, done.stdout + done.stderr
    line = one_line(done.stderr)
    assert "Read-only file system" in line and "choose another with --runs-dir" in line


def test_a_corrupt_checkpoint_database_says_how_to_move_it_aside(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    env = llm_env(server)
    database = tmp_path / "checkpoints.sqlite"
    database.write_bytes(b"this is not a database, it was overwritten" * 100)
    broken = cli(*run_args(tmp_path, "--seeds", "1"), env=env)
    assert broken.returncode == 6, broken.stdout + broken.stderr
    line = one_line(broken.stderr)
    assert f"the checkpoint database {database} is unreadable" in line and f"mv {database} {database}.corrupt" in line
    assert server.count() == 0  # stopped before any request

    database.rename(f"{database}.corrupt")
    run_dir = only_run_dir(tmp_path)
    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


def test_a_corrupt_run_json_is_named_and_other_runs_still_list(tmp_path):
    for run_id, content in (("good-run", '{"status": "passed", "problem": "softmax"}'), ("bad-run", "{\x00\xff")):
        (tmp_path / run_id).mkdir()
        (tmp_path / run_id / "run.json").write_text(content, encoding="latin-1")
    resumed = cli("resume", "bad-run", "--runs-dir", str(tmp_path), env=cli_env())
    assert resumed.returncode == 6, resumed.stdout + resumed.stderr
    assert f"{tmp_path / 'bad-run' / 'run.json'} is corrupt" in one_line(resumed.stderr)
    shown = cli("show", "bad-run", "--runs-dir", str(tmp_path), env=cli_env())
    assert shown.returncode == 6 and "is corrupt" in one_line(shown.stderr)
    listing = cli("runs", "--runs-dir", str(tmp_path), env=cli_env())
    assert listing.returncode == 0
    assert any("bad-run" in row and "corrupt" in row for row in listing.stdout.splitlines())
    assert any("good-run" in row and "passed" in row for row in listing.stdout.splitlines())


def test_a_dotenv_that_is_not_utf8_is_one_line_and_runs_still_lists(tmp_path):
    (tmp_path / ".env").write_bytes(b"OPENAI_API_KEY=caf\xe9\n")
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "run", str(SOFTMAX_SPEC)], cwd=tmp_path,
                          env=cli_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not UTF-8 text (byte 0xe9 at offset 18): save it as UTF-8" in one_line(done.stderr)
    listing = subprocess.run([sys.executable, str(ROOT / "cli.py"), "runs"], cwd=tmp_path, env=cli_env(),
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0 and "no runs under runs/" in listing.stdout


# --- specs are checked first -------------------------------------------------------------------------------------------


def test_a_binary_or_oversized_spec_is_refused_before_the_key_or_any_request(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    png = tmp_path / "diagram.md"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    huge = tmp_path / "huge.md"
    huge.write_text("# Softmax\n\n" + "row-wise softmax of x. " * 20000)
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    cases = [(png, "is not UTF-8 text (byte 0x89 at offset 0)"), (huge, "a spec may be at most 256 KiB"),
             (passwd, "a spec is a Markdown file (.md, .markdown, .txt) or a KernelBench problem (.py)")]
    for spec, message in cases:
        for env in (cli_env(), llm_env(server)):  # without a key too: the spec is what is wrong
            done = cli("run", str(spec), "--runs-dir", str(tmp_path / "runs"), env=env)
            assert done.returncode == 2, done.stdout + done.stderr
            assert message in one_line(done.stderr)
    assert server.count() == 0 and not (tmp_path / "runs").exists()


def test_ten_thousand_seeds_are_refused_before_any_request(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    done = cli(*run_args(tmp_path, "--seeds", "10000"), env=llm_env(server))
    assert done.returncode == 2
    assert "--seeds must be at most 64" in one_line(done.stderr)
    assert server.count() == 0 and not tmp_path.joinpath("checkpoints.sqlite").exists()


def test_a_markdown_reference_error_names_the_line_of_the_file(tmp_path):
    spec = tmp_path / "broken.md"
    spec.write_text("# Double\n\nDouble x.\n\n```python\nimport torch\n\nclass Model(torch.nn.Module):\n"
                    "    def forward(self, x)\n        return 2 * x\n```\n")
    done = cli("run", str(spec), env=cli_env())
    assert done.returncode == 2
    assert "the reference does not parse: line 9: expected ':'" in one_line(done.stderr)  # line 4 of the fence


# --- files the run trusts ----------------------------------------------------------------------------------------------


def test_write_json_is_atomic_under_concurrent_writers(tmp_path):
    target = tmp_path / "first_pass.json"
    failures = []

    def writer(thread: int) -> None:
        for i in range(300):
            try:
                write_json(target, {"thread": thread, "i": i, "padding": "x" * 2000})
            except OSError as err:
                failures.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert json.loads(target.read_text())["i"] == 299  # complete: the last write of some thread
    assert [p.name for p in tmp_path.iterdir()] == ["first_pass.json"]  # no temp file left behind


def test_resuming_a_finished_run_leaves_it_finished(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"))
    env = llm_env(server)
    assert cli(*run_args(tmp_path, "--seeds", "1"), env=env).returncode == 0
    run_dir = only_run_dir(tmp_path)
    before = json.loads((run_dir / "run.json").read_text())
    again = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), env=env)
    assert again.returncode == 0 and again.stdout.strip().splitlines()[-1].startswith("PASSED")
    after = json.loads((run_dir / "run.json").read_text())
    assert after["status"] == "passed" and after["updated"] == before["updated"]
    assert server.count() == 1


# --- resume with other settings, or from another place -----------------------------------------------------------------


def test_resume_can_move_to_a_new_endpoint_and_model_and_records_it(scripted_llm, tmp_path):
    dead = "http://127.0.0.1:9/v1"
    env = cli_env(OPENAI_API_KEY="test", OPENAI_BASE_URL=dead, KERNELAGENT_MODEL="old-model")
    stopped = cli(*run_args(tmp_path, "--seeds", "1", "--max-retries", "0"), env=env)
    assert stopped.returncode == 3 and "cannot reach the LLM endpoint" in stopped.stderr
    run_dir = only_run_dir(tmp_path)

    server = scripted_llm(rule("s0", "seed", 0, "softmax_correct.md"), models=["new-model"])
    resumed = cli("resume", run_dir.name, "--runs-dir", str(tmp_path), "--base-url", server.base_url,
                  "--model", "new-model", "--request-timeout", "30", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["context"]["base_url"] == server.base_url and meta["context"]["model"] == "new-model"
    (change,) = meta["resumed_with"]
    assert change["changed"]["base_url"] == [dead, server.base_url]
    assert change["changed"]["model"] == ["old-model", "new-model"]
    assert change["changed"]["request_timeout_s"] == [600.0, 30.0]


def checkpoint_bytes(runs: Path) -> bytes:
    """Everything the SQLite checkpoints hold (msgpack keeps strings as plain UTF-8)."""
    with sqlite3.connect(runs / "checkpoints.sqlite") as db:
        rows = db.execute("SELECT checkpoint FROM checkpoints UNION ALL SELECT value FROM writes").fetchall()
    return b"".join(row[0] for row in rows)


def test_a_runs_folder_moved_mid_verification_resumes_where_it_is_now(scripted_llm, tmp_path):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_off_by_one.md"),
                          rule("r0", "refine", 0, {"file": "softmax_correct.md", "delay_s": 1}, "softmax_correct.md"))
    env = llm_env(server)
    first = tmp_path / "first"
    process = start_cli(*run_args(first, "--seeds", "1"), env=env)
    # Round 0's verification has started (if it is over already, the slow refine reply holds the run a while).
    wait_for(lambda: any(first.glob("*/work/seed0/round0")), process, "the first verification")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert str(first).encode() not in checkpoint_bytes(first)  # every path the run keeps is relative

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    subprocess.run(["mv", str(first), str(moved)], check=True)
    run_dir = only_run_dir(moved)
    resumed = cli("resume", run_dir.name, "--runs-dir", str(moved), env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "passed" and (result["winner"]["seed"], result["winner"]["rounds"]) == (0, 2)
    assert result["kernel_path"] == "./kernel.py" and f"Kernel: {run_dir / 'kernel.py'}" in resumed.stdout
    assert not first.exists()  # nothing read or written at the old place
    assert server.count(task="seed") == 1  # the finished seed request is not repeated


def test_checkpoints_of_an_older_version_with_absolute_paths_load_where_the_runs_folder_is_now(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    run_dir = str(old / "r1")
    state = {"spec_path": "/elsewhere/softmax.md", "run_dir": run_dir,
             "harness": {"dir": f"{run_dir}/harness/reference", "cache_dir": f"{old}/.triton-cache"}}
    seed = {"run_dir": run_dir, "candidate_path": f"{run_dir}/seeds/seed0/round0.py"}
    config = {"configurable": {"thread_id": "r1", "checkpoint_ns": ""}}
    conn = sqlite3.connect(old / "checkpoints.sqlite")  # written as versions before relative paths wrote it
    saved = SqliteSaver(conn).put(config, empty_checkpoint() | {"channel_values": state}, {}, {})
    SqliteSaver(conn).put_writes(saved, [("__pregel_tasks", Send("seed_branch", seed))], "task-1")
    conn.close()
    subprocess.run(["mv", str(old), str(new)], check=True)

    with open_saver(None, new) as saver:
        found = saver.get_tuple(config)
    new_run_dir = str(new.resolve() / "r1")
    assert found.checkpoint["channel_values"] == {
        "spec_path": "/elsewhere/softmax.md",  # the user's file, not the run's: as it was
        "run_dir": new_run_dir, "harness": {"dir": f"{new_run_dir}/harness/reference", "cache_dir": f"{new.resolve()}/.triton-cache"}}
    ((_, channel, send),) = found.pending_writes
    assert channel == "__pregel_tasks" and send.arg == {"run_dir": new_run_dir, "candidate_path": f"{new_run_dir}/seeds/seed0/round0.py"}
