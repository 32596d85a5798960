"""Sandbox tests with real processes: limits, secret scrubbing, timeouts, leftover cleanup, network isolation."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import (
    CONNECT,
    SPAWN_SETSID_GRANDCHILD,
    assert_confined,
    assert_unconfined,
    is_running,
    read_pids,
)

from kernelagent.sandbox import SandboxLimits, SandboxResult, apply_limits_in_child, run_sandboxed, scrubbed_env
from kernelagent.sandbox.reaper import landlock_abi

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

PY = sys.executable
REPO_ROOT = Path(__file__).resolve().parents[1]


# Neither Landlock (whose ABI 6 scope keeps signals inside the run) nor a uid of its own: the backstops' tests.
UNSCOPED = {"confine_filesystem": False, "unprivileged": False}


def run_py(code: str, cwd: Path, **limit_overrides) -> SandboxResult:
    return run_sandboxed([PY, "-c", textwrap.dedent(code)], cwd=cwd, limits=SandboxLimits(**limit_overrides))


def test_exit_code_and_both_streams_are_captured(tmp_path):
    result = run_py("import sys; print('to out'); print('to err', file=sys.stderr); sys.exit(3)", tmp_path)
    assert (result.returncode, result.timed_out, result.signal_name) == (3, False, None)
    assert result.stdout == "to out\n"
    assert result.stderr == "to err\n"
    assert "to err" in result.tail() and "to out" in result.tail()
    assert not list(tmp_path.glob(".sandbox-*")), "captured-output files must be removed"


def test_parent_secrets_never_reach_the_child_and_home_is_inside_cwd(tmp_path, monkeypatch):
    secrets = {
        "OPENAI_API_KEY": "sk-1",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "GITHUB_TOKEN": "ghp",
        "HF_TOKEN": "hf",
        "TRITON_AUTH_TOKEN": "allowlisted prefix, still a secret",
        "DB_PASSWORD": "pw",
        "MY_SESSION_COOKIE": "c",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("UNRELATED_SETTING", "not allowlisted")

    result = run_py("import json, os; print(json.dumps(dict(os.environ)))", tmp_path)

    child_env = json.loads(result.stdout)
    assert not set(secrets) & set(child_env)
    assert "UNRELATED_SETTING" not in child_env
    assert child_env["TRITON_INTERPRET"] == "1"
    assert child_env["PATH"] == os.environ["PATH"]
    for var in ("HOME", "TMPDIR"):
        assert Path(child_env[var]).is_relative_to(tmp_path) and Path(child_env[var]).is_dir()


def test_extra_and_explicit_envs_are_secret_filtered_too(tmp_path):
    env = scrubbed_env({"MY_API_KEY": "x", "SOME_AUTH_HEADER": "y", "KERNEL_NAME": "softmax"})
    assert "MY_API_KEY" not in env and "SOME_AUTH_HEADER" not in env
    assert env["KERNEL_NAME"] == "softmax"

    explicit = {"PATH": os.environ["PATH"], "ANTHROPIC_API_KEY": "x", "SESSION_ID": "y", "KEEP_ME": "1"}
    result = run_sandboxed(
        [PY, "-c", "import json, os; print(json.dumps(dict(os.environ)))"], cwd=tmp_path, env=explicit
    )
    child_env = json.loads(result.stdout)
    assert "ANTHROPIC_API_KEY" not in child_env and "SESSION_ID" not in child_env
    assert child_env["KEEP_ME"] == "1"


def test_timeout_kills_a_busy_loop_promptly(tmp_path):
    result = run_py("while True: pass", tmp_path, timeout_s=1.0)
    assert result.timed_out
    assert (result.returncode, result.signal_name) == (None, "SIGKILL")
    assert 1.0 <= result.wall_s < 2.5
    assert "timed out" in result.tail()


def test_timeout_kills_a_sigterm_ignoring_child_and_its_escaped_grandchild(tmp_path):
    code = (
        SPAWN_SETSID_GRANDCHILD
        + """
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
    """
    )
    started = time.monotonic()
    result = run_py(code, tmp_path, timeout_s=1.5)
    assert time.monotonic() - started < 3.5
    assert result.timed_out and result.returncode is None
    assert result.stdout == "ready\n", "output printed before the kill is kept"
    (grandchild,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(grandchild)
    assert result.leftovers_killed >= 1


def test_setsid_grandchild_left_behind_is_killed(tmp_path):
    result = run_py(SPAWN_SETSID_GRANDCHILD, tmp_path)
    assert result.returncode == 0 and not result.timed_out
    (grandchild,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(grandchild)
    assert result.leftovers_killed == 1


def test_double_forked_daemon_is_killed(tmp_path):
    code = """
    import os, time
    if os.fork() == 0:          # first fork
        os.setsid()
        if os.fork() == 0:      # second fork: orphaned daemon, reparented to the subreaper
            with open("pids.txt", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(3600)
        os._exit(0)
    while not os.path.exists("pids.txt"):
        time.sleep(0.01)
    """
    result = run_py(code, tmp_path)
    assert result.returncode == 0
    (daemon,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(daemon)
    assert result.leftovers_killed >= 1


def test_nothing_survives_even_if_the_child_kills_the_reaper(tmp_path):
    # Last line of defence: the parent kills the reaper's group and sweeps for the sandbox's marker variable. Where
    # Landlock's signal scope or a uid of its own applies, the child cannot signal the reaper at all
    # (tests/test_escape.py), so this runs without both: what a kernel without them leaves.
    code = (
        SPAWN_SETSID_GRANDCHILD
        + """
    with open("pids.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
    os.kill(os.getppid(), 9)
    time.sleep(3600)
    """
    )
    result = run_py(code, tmp_path, timeout_s=10, **UNSCOPED)
    assert result.wall_s < 5
    pids = read_pids(tmp_path / "pids.txt")
    assert len(pids) == 2
    assert not any(is_running(pid) for pid in pids)
    assert "without a status report" in result.stderr


def test_memory_limit_stops_a_4gib_allocation(tmp_path):
    result = run_py("bytearray(4 * 1024**3)", tmp_path, memory_bytes=1024**3)
    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_memory_limit_is_skipped_when_disabled_for_gpu_runs(tmp_path):
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY)"
    assert run_py(code, tmp_path, memory_bytes=1024**3, apply_memory_limit=False).stdout.strip() == "True"


# Allocates and touches 3 GiB (bytes * n writes every page), then waits to be killed.
TOUCH_3GIB = "import time\nblob = b'x' * (3 * 1024**3)\ntime.sleep(60)\n"
# A GPU run's memory configuration: no RLIMIT_AS, only the resident-memory watchdog (here at 1 GiB).
GPU_LIKE_MEMORY = {"apply_memory_limit": False, "rss_bytes": 1024**3, "timeout_s": 60}
# The 3 GiB are held by a double-forked, setsid'd daemon; the command itself stays small and just waits.
DAEMON_TOUCHES_3GIB = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open("pids.txt", "w") as f:
                f.write(f"{os.getpid()}\\n")
            blob = b"x" * (3 * 1024**3)
            time.sleep(60)
        os._exit(0)
    time.sleep(60)
"""


def test_memory_watchdog_kills_a_3gib_tree_without_rlimit_as(tmp_path):
    result = run_py(TOUCH_3GIB, tmp_path, **GPU_LIKE_MEMORY)
    assert result.memory_exceeded and not result.timed_out
    assert (result.returncode, result.signal_name) == (-signal.SIGKILL, "SIGKILL")
    assert result.wall_s < 10 and result.rss_peak_bytes > 1024**3
    assert "more than 1 GiB of host memory" in result.stderr
    assert "too much host memory" in result.tail()


def test_memory_watchdog_leaves_a_run_under_the_limit_alone(tmp_path):
    code = "import time\nblob = b'x' * (200 * 1024**2)\ntime.sleep(0.3)\nprint('done')\n"
    result = run_py(code, tmp_path, **GPU_LIKE_MEMORY)
    assert (result.returncode, result.stdout, result.memory_exceeded) == (0, "done\n", False), result.tail()
    assert 200 * 1024**2 <= result.rss_peak_bytes < 1024**3


def test_memory_watchdog_counts_a_daemonised_grandchild(tmp_path):
    result = run_py(DAEMON_TOUCHES_3GIB, tmp_path, **GPU_LIKE_MEMORY)
    assert result.memory_exceeded and result.wall_s < 10, result.tail()
    (daemon,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(daemon)


def test_memory_watchdog_is_off_when_rss_bytes_is_none(tmp_path):
    result = run_py("print('ok')", tmp_path, rss_bytes=None)
    assert (result.stdout, result.memory_exceeded, result.rss_peak_bytes) == ("ok\n", False, None)


def test_file_size_limit_stops_a_large_write(tmp_path):
    code = "open('big.bin', 'wb').write(b'x' * 4_000_000)"
    result = run_py(code, tmp_path, file_size_bytes=1_000_000)
    assert result.returncode != 0
    assert "File too large" in result.stderr
    assert (tmp_path / "big.bin").stat().st_size <= 1_000_000


def test_cpu_time_limit_kills_a_cpu_hog(tmp_path):
    result = run_py("while True: pass", tmp_path, timeout_s=30, cpu_time_s=1)
    assert not result.timed_out
    assert result.signal_name == "SIGXCPU"
    assert result.wall_s < 5


def test_huge_output_is_truncated_to_its_tail(tmp_path):
    code = """
    import sys
    chunk = "y" * 1_000_000
    for _ in range(50):
        sys.stdout.write(chunk)
    print("THE END")
    """
    result = run_py(code, tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("[... ") and "bytes truncated ...]" in result.stdout
    assert result.stdout.endswith("THE END\n")
    assert len(result.stdout) < 1_000_000 + 100


def test_network_is_isolated_from_host_services(tmp_path, local_http_server):
    control = run_py(CONNECT.format(port=local_http_server), tmp_path, isolate_network=False)
    assert control.stdout.strip() == "connected", "the server must be reachable without isolation"
    assert not control.network_isolated

    result = run_py(CONNECT.format(port=local_http_server), tmp_path)
    if not result.network_isolated:
        pytest.skip("this OS does not allow a new network namespace (not root, no unprivileged user namespaces)")
    assert result.returncode == 7, result.tail()


def test_isolated_child_still_has_its_own_loopback(tmp_path):
    code = """
    import socket
    server = socket.create_server(("127.0.0.1", 0))
    socket.create_connection(server.getsockname(), timeout=3).close()
    print("ok")
    """
    result = run_py(code, tmp_path)
    if not result.network_isolated:
        pytest.skip("this OS does not allow a new network namespace")
    assert result.stdout.strip() == "ok", result.tail()


def test_a_candidate_reads_only_the_system_python_and_its_folder(tmp_path, file_access_probe):
    assert_unconfined(run_py(file_access_probe, tmp_path, confine_filesystem=False))  # the accesses work otherwise
    assert_confined(run_py(file_access_probe, tmp_path))


def test_confinement_rules_open_no_real_home_no_source_tree_and_no_other_process(tmp_path):
    from kernelagent.sandbox.filesystem import confinement_rules

    cwd = tmp_path.resolve()
    env = {"HOME": "/root", "TMPDIR": str(cwd / "tmp"), "TRITON_CACHE_DIR": "/var/cache/triton", "PYTHONPATH": "x"}
    readable, writable = confinement_rules(cwd, env)
    assert writable[:3] == (str(cwd), "/var/cache/triton", str(cwd / "tmp")) and "/root" not in writable
    assert f"dir:{REPO_ROOT}" in readable and str(REPO_ROOT / "kernelagent") in readable
    assert str(REPO_ROOT) not in readable  # its .env, runs/ and tests stay closed
    assert "/proc/self" in readable and "/proc" not in readable
    assert not [path for path in readable if path.startswith("/proc/") and path[6:].isdigit()]
    assert "x" not in readable  # a relative PYTHONPATH entry is some working directory


def _python_usable_by_nobody() -> str | None:
    # The venv's base interpreter may live under /root (mode 700); a system Python is readable by everyone.
    for candidate in (PY, "/usr/bin/python3"):
        probe = [candidate, "-c", "import sys, pathlib; assert sys.version_info >= (3, 10)"]
        try:
            if subprocess.run(probe, user=65534, group=65534, extra_groups=[], capture_output=True).returncode == 0:
                return candidate
        except OSError:
            continue
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as an unprivileged user")
def test_unprivileged_user_is_isolated_through_a_user_namespace():
    if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
        pytest.skip("user namespaces are disabled on this kernel")
    python = _python_usable_by_nobody()
    if python is None:
        pytest.skip("no Python 3.10+ interpreter that user nobody can run")
    work = Path(tempfile.mkdtemp(prefix="sandbox-nobody-"))
    work.chmod(0o777)
    script = f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from pathlib import Path
        from kernelagent.sandbox import run_sandboxed
        r = run_sandboxed(["id", "-u"], cwd=Path({str(work)!r}))
        print(r.network_isolated, r.stdout.strip(), r.returncode)
    """
    try:
        out = subprocess.run(
            [python, "-c", textwrap.dedent(script)],
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    isolated, uid, returncode = out.stdout.split()
    if isolated != "True":
        pytest.skip("unprivileged user namespaces are not allowed here (e.g. seccomp or sysctl)")
    assert (uid, returncode) == ("65534", "0"), "the user keeps its own uid inside the namespace"


def test_crash_by_signal_is_reported(tmp_path):
    result = run_py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", tmp_path)
    assert result.signal_name == "SIGSEGV"
    assert result.returncode == -signal.SIGSEGV
    assert not result.timed_out


def test_missing_command_reports_127(tmp_path):
    result = run_sandboxed(["definitely-not-a-command-xyz"], cwd=tmp_path)
    assert result.returncode == 127
    assert "definitely-not-a-command-xyz" in result.stderr


def test_apply_limits_in_child_works_after_a_plain_fork():
    # How a warm fork server will use it: fork, apply, then run the candidate in-process.
    limits = SandboxLimits(
        memory_bytes=2 * 1024**3, open_files=64, file_size_bytes=10**6, cpu_time_s=7, isolate_network=False
    )
    pid = os.fork()
    if pid == 0:
        try:
            apply_limits_in_child(limits)
            ok = (
                resource.getrlimit(resource.RLIMIT_AS) == (2 * 1024**3, 2 * 1024**3)
                and resource.getrlimit(resource.RLIMIT_NOFILE) == (64, 64)
                and resource.getrlimit(resource.RLIMIT_FSIZE) == (10**6, 10**6)
                and resource.getrlimit(resource.RLIMIT_CPU)[0] == 7
                and resource.getrlimit(resource.RLIMIT_CORE) == (0, 0)
            )
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_concurrent_runs_do_not_mix_outputs(tmp_path):
    def run(i: int) -> str:
        return run_py(f"print({i})", tmp_path).stdout.strip()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(run, range(8))) == [str(i) for i in range(8)]


def test_overhead_per_call_is_small(tmp_path):
    run_sandboxed(["true"], cwd=tmp_path)  # warm the page cache
    started = time.perf_counter()
    for _ in range(5):
        assert run_sandboxed(["true"], cwd=tmp_path).returncode == 0
    per_call = (time.perf_counter() - started) / 5
    print(f"sandbox overhead per call: {per_call * 1000:.1f} ms")
    assert per_call < 0.25


def test_a_gpu_run_keeps_our_uid_and_an_interpreter_run_gets_its_own(tmp_path):
    # GPU runs share the judge's uid (CUDA IPC fails between uids); SandboxLimits decides from the run's env.
    code = "import os; print(os.getuid())"
    (tmp_path / "gpu").mkdir()
    (tmp_path / "cpu").mkdir()
    gpu = run_sandboxed([PY, "-c", code], cwd=tmp_path / "gpu", env=scrubbed_env({"CUDA_VISIBLE_DEVICES": "0"}))
    assert gpu.stdout.strip() == str(os.getuid()) and "GPU run keeps the judge's uid" in gpu.confinement["uid_note"]
    cpu_env = scrubbed_env({"CUDA_VISIBLE_DEVICES": "0", "TRITON_INTERPRET": "1"})
    cpu = run_sandboxed([PY, "-c", code], cwd=tmp_path / "cpu", env=cpu_env)
    if os.geteuid() != 0:
        assert cpu.stdout.strip() == str(os.getuid()) and "not root" in cpu.confinement["uid_note"]
    else:
        assert cpu.stdout.strip() == str(cpu.confinement["uid"]) != "0", cpu.tail()
        assert (tmp_path / "cpu").stat().st_uid == 0, "the folder is handed back after the run"


@pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock")
def test_a_cold_module_run_cannot_execute_the_interpreter_again_and_its_output_has_no_name(tmp_path):
    # The cold path must exec the interpreter to start; exec_layer takes that right back before the module runs.
    (tmp_path / "again.py").write_text(
        textwrap.dedent(
            """
            import glob, os, sys
            loader = (glob.glob("/lib64/ld-linux*.so*") + glob.glob("/lib/ld-linux*.so*"))[0]
            for argv in ([sys.executable, "-c", "pass"], [loader, sys.executable, "-c", "pass"]):
                try:
                    os.waitpid(os.posix_spawn(argv[0], argv, {}), 0)
                    print("started", argv[0])
                except OSError as err:
                    print("refused", argv[0], err.errno)
            print("stdout is", os.readlink("/proc/self/fd/1"))
            """
        )
    )
    env = {"PATH": os.environ["PATH"], "TRITON_INTERPRET": "1"}
    result = run_sandboxed([PY, "-m", "again"], cwd=tmp_path, limits=SandboxLimits(timeout_s=60), env=env)
    assert result.returncode == 0, result.tail()
    assert "started" not in result.stdout and result.stdout.count("refused") == 2, result.stdout
    assert str(tmp_path) not in result.stdout.splitlines()[-1], "the capture file must not be in the run's folder"


@pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock")
def test_a_gpu_run_may_name_its_own_threads_and_no_other_process_s(tmp_path):
    # cuInit names its threads through /proc/<pid>/task/<tid>/comm and fails with error 304 if it may not (H200).
    code = """
        import os, threading
        done = threading.Event()
        worker = threading.Thread(target=done.wait)
        worker.start()
        for path in (f"/proc/self/task/{worker.native_id}/comm", f"/proc/{os.getppid()}/task/{os.getppid()}/comm"):
            try:
                with open(path, "w") as comm:
                    comm.write("named")
                print("wrote", path.split("/")[2] == "self")
            except OSError as err:
                print("refused", path.split("/")[2] == "self", err.errno)
        done.set()
        worker.join()
        """
    runs = {gpu: run_py(code, tmp_path, gpu=gpu, unprivileged=False, timeout_s=60) for gpu in (True, False)}
    assert runs[True].stdout.splitlines() == ["wrote True", "refused False 13"], runs[True].tail()
    assert runs[False].stdout.splitlines() == ["refused True 13", "refused False 13"], runs[False].tail()


@pytest.fixture
def compiler_lookups_cleared():
    from kernelagent.sandbox import filesystem

    caches = (filesystem.compilers_for_triton, filesystem.script_interpreters, filesystem._compiler_programs)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


@pytest.mark.skipif(landlock_abi() < 1 or not shutil.which("gcc"), reason="needs Landlock and gcc")
@pytest.mark.parametrize("names_it", ["by absolute path", "from $0"])
def test_a_compiler_wrapped_in_a_script_runs_confined_and_its_shell_is_never_allowed_by_name(
    tmp_path, monkeypatch, compiler_lookups_cleared, names_it
):
    # The H200 image's $CC (/opt/gcc/bin/gcc) is a script that runs /opt/gcc/bin/gcc-real: refused at exec under the
    # GPU rules, first for the script's shell, then (with the shell allowed) for gcc-real. Triton builds its launcher
    # with $CC first.
    from kernelagent.sandbox.filesystem import compilers_for_triton, script_interpreters
    from kernelagent.verify.runtime_guard import AllowedPrograms

    toolchain = tmp_path / "toolchain" / "bin"
    toolchain.mkdir(parents=True)
    real = toolchain / "gcc-real"  # a copy: the system's gcc is allowed anyway, this one only as the wrapper's
    shutil.copy(os.path.realpath(shutil.which("gcc")), real)
    wrapper = toolchain / "gcc"
    target = f"{real} -B{toolchain}/" if names_it == "by absolute path" else '"${0%/*}/gcc-real"'
    wrapper.write_text(f"#!/bin/sh\nexec {target} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    shell = os.path.realpath("/bin/sh")
    assert str(wrapper) in compilers_for_triton() and str(real) in compilers_for_triton()
    # The folder its -B names (where gcc-real finds cc1): the H200's gcc-real was refused there next.
    assert (str(toolchain) in compilers_for_triton()) == (names_it == "by absolute path")
    assert script_interpreters() == (shell,)
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    allowed = AllowedPrograms()
    assert allowed.allows(str(wrapper), None) and not allowed.allows("/bin/sh", None)
    (tmp_path / "run").mkdir()
    code = f"import subprocess; print(subprocess.run([{str(wrapper)!r}, '--version'], capture_output=True).returncode)"
    result = run_py(code, tmp_path / "run", gpu=True, unprivileged=False, timeout_s=60)
    assert result.stdout.strip() == "0", result.tail()


@pytest.mark.skipif(landlock_abi() < 1, reason="confined runs need Landlock here")
def test_a_confined_run_may_not_use_the_kernel_s_keyrings_and_an_unconfined_one_may(tmp_path):
    # A run keeping the agent's uid (the GPU rules) linked the uid's keyring into its session and read the agent's
    # keys (outside attacker, 2026-11-30); confined runs get add_key, request_key and keyctl refused.
    code = """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        found = libc.syscall(250 if os.uname().machine == "x86_64" else 219, 0, -4, 0)  # KEYCTL_GET_KEYRING_ID, @u
        print(found >= 0, ctypes.get_errno())
        """
    (tmp_path / "confined").mkdir()
    (tmp_path / "open").mkdir()
    confined = run_py(code, tmp_path / "confined", gpu=True, unprivileged=False, timeout_s=60)
    unconfined = run_py(code, tmp_path / "open", confine_filesystem=False, timeout_s=60)
    assert confined.stdout.split() == ["False", str(errno.EPERM)], confined.tail()
    assert confined.confinement["seccomp"] is True and "keyctl" in confined.confinement["refused_calls"]
    assert unconfined.stdout.split()[0] == "True", unconfined.tail()


@pytest.mark.skipif(landlock_abi() < 1, reason="confined runs need Landlock here")
def test_a_cpu_run_cannot_reach_a_unix_socket_outside_and_keeps_socket_pairs(tmp_path):
    # A Unix socket with a path crosses the network namespace, and Landlock has no right for connecting to one: an
    # outside attacker on the GPU rules talked to a listener in /tmp. CPU runs may not make such a socket at all.
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "outside.sock"))
    listener.listen(1)
    os.chmod(tmp_path / "outside.sock", 0o777)
    code = f"""
        import socket
        left, right = socket.socketpair()
        left.sendall(b"pair"); print(right.recv(4).decode())
        try:
            client = socket.socket(socket.AF_UNIX)
            client.connect({str(tmp_path / "outside.sock")!r})
            print("connected")
        except OSError as err:
            print("refused", err.errno)
        """
    runs = {}
    for name, gpu in (("cpu", False), ("gpu", True)):
        (tmp_path / name).mkdir()
        runs[name] = run_py(code, tmp_path / name, gpu=gpu, unprivileged=False, timeout_s=60)
    listener.close()
    assert runs["cpu"].stdout.split() == ["pair", "refused", str(errno.EPERM)], runs["cpu"].tail()
    assert "socket(AF_UNIX)" in runs["cpu"].confinement["refused_calls"]
    assert runs["gpu"].stdout.split()[0] == "pair", runs["gpu"].tail()  # GPU runs: see reaper's seccomp note


@pytest.mark.skipif(landlock_abi() < 1, reason="confined runs need Landlock here")
def test_a_run_keeping_our_uid_cannot_set_limits_of_others_own_files_setuid_or_use_io_uring(tmp_path):
    # An outside attacker (round 3) on the GPU rules, where the run keeps the agent's uid: prlimit64 set the agent's
    # open-file limit to 4 and its CPU limit to 1 s; chmod made a root-owned program setuid-root, setxattr marked a
    # folder; io_uring opened a socket and connected past the socket(AF_UNIX) refusal (on the CPU rules too).
    bait = tmp_path / "bait_prog"
    bait.write_text("#!/bin/sh\n")
    bait.chmod(0o755)
    code = f"""
        import ctypes, os, resource
        libc = ctypes.CDLL(None, use_errno=True)
        def outcome(call):
            try:
                call()
                return "ok"
            except OSError as err:
                return f"refused:{{err.errno}}"
        x86 = os.uname().machine == "x86_64"
        print("own_limits", outcome(lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0))))
        print("parent_limits", outcome(lambda: resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE, (4, 4))))
        print("setuid", outcome(lambda: os.chmod({str(bait)!r}, 0o4755)))
        open("mine", "w").close()
        print("plain_chmod", outcome(lambda: os.chmod("mine", 0o600)))
        print("chown", outcome(lambda: os.chown("mine", 0, 0)))
        print("xattr", outcome(lambda: os.setxattr("mine", "user.mark", b"x")))
        params = ctypes.create_string_buffer(120)
        fd = libc.syscall(425, 8, params)  # io_uring_setup, the same number on x86-64 and aarch64
        print("io_uring", "ok" if fd >= 0 else f"refused:{{ctypes.get_errno()}}")
        """
    (tmp_path / "run").mkdir()
    result = run_py(code, tmp_path / "run", gpu=True, unprivileged=False, timeout_s=60)
    seen = dict(line.split() for line in result.stdout.splitlines())
    refused = f"refused:{errno.EPERM}"
    assert seen == {"own_limits": "ok", "parent_limits": refused, "setuid": refused, "plain_chmod": "ok",
                    "chown": refused, "xattr": refused, "io_uring": refused}, result.tail()
    assert bait.stat().st_mode & 0o7777 == 0o755
    assert "prlimit64 on another process" in result.confinement["refused_calls"]


@pytest.mark.skipif(landlock_abi() < 1, reason="confined runs need Landlock here")
def test_a_cpu_run_cannot_hold_memory_the_watchdog_does_not_see(tmp_path):
    # Written into a memfd and never mapped, 9.5 GiB were not resident, and the round 3 attacker's candidate passed
    # under the host-memory limit; a SysV segment does the same. CPU runs may make neither (their tensors are the
    # judge's memfds); GPU runs still may, until a GPU probe shows CUDA does without them.
    code = """
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            os.close(os.memfd_create("hoard"))
            print("memfd ok")
        except OSError as err:
            print("memfd", err.errno)
        made = libc.shmget(0, 1 << 20, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
        print("shmget", "ok" if made >= 0 else ctypes.get_errno())
        """
    runs = {}
    for name, gpu in (("cpu", False), ("gpu", True)):
        (tmp_path / name).mkdir()
        runs[name] = run_py(code, tmp_path / name, gpu=gpu, unprivileged=False, timeout_s=60)
    assert runs["cpu"].stdout.split() == ["memfd", str(errno.EPERM), "shmget", str(errno.EPERM)], runs["cpu"].tail()
    assert runs["gpu"].stdout.split() == ["memfd", "ok", "shmget", "ok"], runs["gpu"].tail()


@pytest.mark.skipif(landlock_abi() < 1, reason="confined runs need Landlock here")
def test_a_run_keeping_our_uid_is_killed_once_it_runs_too_many_tasks(tmp_path):
    # Root ignores RLIMIT_NPROC, and GPU runs keep the agent's uid: the round 3 attacker's threads reached 28116 of
    # the host's 32768 pids there. The watchdog counts the tree's tasks instead (a poll: it may overshoot a little).
    code = """
        import threading, time
        for _ in range(600):
            threading.Thread(target=time.sleep, args=(20,), daemon=True).start()
        print("all started")
        time.sleep(20)
        """
    result = run_py(code, tmp_path, gpu=True, unprivileged=False, timeout_s=40, max_tasks=300)
    assert result.tasks_exceeded and not result.timed_out, result.tail()
    assert "processes and threads" in result.tail()


@pytest.mark.skipif(landlock_abi() < 1 or os.geteuid() != 0, reason="needs Landlock and root (a run keeping root)")
@pytest.mark.parametrize("warm", [False, True])
def test_a_run_keeping_root_reads_nothing_only_root_may_read(tmp_path, monkeypatch, warm):
    # Landlock lets a confined run read /etc, and a run that keeps root (the GPU rules) owns /etc/shadow: the round 3
    # attacker read it. Files other users may not read, and folders they may not list, are masked for such a run.
    # Here the "system" folder lies in the run's own folder, which it may read anyway.
    from kernelagent.sandbox import filesystem
    from kernelagent.sandbox.warm import shared_pool

    run = tmp_path / "run"
    system = run / "system"
    (system / "private").mkdir(parents=True)
    (system / "shadow").write_text("root-only secret")
    (system / "shadow").chmod(0o600)
    (system / "private" / "key").write_text("private key")
    (system / "private").chmod(0o700)
    (system / "public").write_text("for everyone")
    (system / "public").chmod(0o644)
    monkeypatch.setattr(filesystem, "HIDDEN_ROOTS", (str(system),))
    (run / "read_system.py").write_text(
        "import os\n"
        "for name in ('shadow', 'private/key', 'public'):\n"
        "    try:\n"
        f"        print(name, repr(open(os.path.join({str(system)!r}, name)).read()))\n"
        "    except OSError as err:\n"
        "        print(name, type(err).__name__)\n"
    )
    limits = SandboxLimits(gpu=True, unprivileged=False, timeout_s=60)
    runner = shared_pool(True).run if warm else run_sandboxed
    result = runner([PY, "-m", "read_system"], cwd=run, limits=limits, env={"TRITON_INTERPRET": "1"})
    seen = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert seen == {"shadow": "''", "private/key": "PermissionError", "public": "'for everyone'"}, result.tail()
    assert result.confinement["root_only_hidden"] == 2


@pytest.mark.skipif(landlock_abi() < 2, reason="renames between folders are a Landlock ABI 2 right (REFER)")
def test_a_cold_confined_run_may_move_files_between_its_own_folders(tmp_path):
    # Triton's cache writes each kernel into tmp.pid_*/ and moves it up: on the H200 a confined cold run failed with
    # EXDEV (Invalid cross-device link) there. The further layer that takes back the interpreter's execute right
    # handled EXECUTE alone, and Landlock refuses every move between folders to a layer that does not handle REFER.
    (tmp_path / "mover.py").write_text(
        "import os\nos.makedirs('cache/tmp.pid_1')\nopen('cache/tmp.pid_1/k.so', 'w').close()\n"
        "os.replace('cache/tmp.pid_1/k.so', 'cache/k.so')\nprint('moved')\n"
    )
    result = run_sandboxed([PY, "-m", "mover"], cwd=tmp_path, limits=SandboxLimits())
    assert result.filesystem_confined and result.stdout.strip() == "moved", result.tail()
