"""Warm-pool tests with real processes: the sandbox guarantees of test_sandbox.py, through a fork server."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sys
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

from kernelagent.sandbox import SandboxLimits, SandboxResult, WarmPool, run_sandboxed_warm, shared_pool
from kernelagent.sandbox.warm import _module_and_args

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT / "tests" / "corpus"
INTERPRET_ENV = {"TRITON_INTERPRET": "1"}
_names = itertools.count()


@pytest.fixture(scope="module")
def pool() -> WarmPool:
    """The process-wide interpreter pool (what run_sandboxed_warm uses), booted once for the whole module."""
    warm = shared_pool(interpret=True)
    warm.warm_up()
    return warm


def write_module(cwd: Path, code: str) -> str:
    name = f"cand_{next(_names)}"
    (cwd / f"{name}.py").write_text(textwrap.dedent(code))
    return name


# Neither Landlock's signal scope nor a uid of its own, as on a kernel without them: the backstops' tests.
UNSCOPED = {"confine_filesystem": False, "unprivileged": False}


def run_code(pool: WarmPool, code: str, cwd: Path, env: dict | None = None, **limit_overrides) -> SandboxResult:
    module = write_module(cwd, code)
    env = INTERPRET_ENV if env is None else env
    return pool.run_module(module, [], cwd=cwd, limits=SandboxLimits(**limit_overrides), env=env)


def server_pid(pool: WarmPool) -> int:
    return pool._servers[0].info["pid"]


def assert_still_serving(pool: WarmPool, cwd: Path) -> None:
    result = run_code(pool, "print('still here')", cwd)
    assert (result.returncode, result.stdout) == (0, "still here\n"), result.tail()


# --------------------------------------------------------------------------- same guarantees as the cold path


def test_exit_code_argv_cwd_and_both_streams_are_captured(pool, tmp_path):
    code = """
    import os, sys
    print("to out", sys.argv[1:], os.getcwd() == os.environ["PWD_EXPECTED"])
    print("to err", file=sys.stderr)
    sys.exit(3)
    """
    module = write_module(tmp_path, code)
    env = INTERPRET_ENV | {"PWD_EXPECTED": str(tmp_path.resolve())}
    result = pool.run_module(module, ["a", "b"], cwd=tmp_path, limits=SandboxLimits(), env=env)
    assert (result.returncode, result.timed_out, result.signal_name) == (3, False, None)
    assert result.stdout == "to out ['a', 'b'] True\n"
    assert result.stderr == "to err\n"
    assert not list(tmp_path.glob(".sandbox-*")), "captured-output files must be removed"


def test_uncaught_exception_and_missing_module_end_like_python_m(pool, tmp_path):
    crashed = run_code(pool, "raise ValueError('boom')", tmp_path)
    assert crashed.returncode == 1 and "ValueError: boom" in crashed.stderr
    missing = pool.run_module("no_such_module_xyz", [], cwd=tmp_path, limits=SandboxLimits(), env=INTERPRET_ENV)
    assert missing.returncode == 1 and "No module named no_such_module_xyz" in missing.stderr


def test_parent_secrets_never_reach_the_child_env_nor_its_environ_block(pool, tmp_path, monkeypatch):
    secrets = {"OPENAI_API_KEY": "sk-1", "GITHUB_TOKEN": "ghp", "HF_TOKEN": "hf", "TRITON_AUTH_TOKEN": "tok"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("UNRELATED_SETTING", "not allowlisted")
    code = """
    import json, os
    block = open("/proc/self/environ", "rb").read().decode(errors="replace")
    print(json.dumps({"env": dict(os.environ), "block": block}))
    """
    module = write_module(tmp_path, code)
    result = pool.run_module(module, [], cwd=tmp_path, limits=SandboxLimits(), env=None)  # scrubbed parent env
    seen = json.loads(result.stdout)
    assert not set(secrets) & set(seen["env"])
    assert not any(value in seen["block"] for value in secrets.values())
    assert "UNRELATED_SETTING" not in seen["env"]
    assert seen["env"]["TRITON_INTERPRET"] == "1" and seen["env"]["PATH"] == os.environ["PATH"]
    for var in ("HOME", "TMPDIR"):
        assert Path(seen["env"][var]).is_relative_to(tmp_path.resolve()) and Path(seen["env"][var]).is_dir()

    explicit = INTERPRET_ENV | {"ANTHROPIC_API_KEY": "x", "SESSION_ID": "y", "KEEP_ME": "1"}
    result = pool.run_module(module, [], cwd=tmp_path, limits=SandboxLimits(), env=explicit)
    env = json.loads(result.stdout)["env"]
    assert "ANTHROPIC_API_KEY" not in env and "SESSION_ID" not in env and env["KEEP_ME"] == "1"
    assert "PATH" not in env, "an explicit env is used as-is, exactly like run_sandboxed"


def test_candidate_inherits_no_descriptor_of_the_server(pool, tmp_path):
    result = run_code(pool, "import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))", tmp_path)
    assert json.loads(result.stdout)[:3] == [0, 1, 2]
    assert len(json.loads(result.stdout)) == 4, "only stdio, plus the fd listdir itself used"


def test_timeout_kills_a_busy_loop_promptly(pool, tmp_path):
    result = run_code(pool, "while True: pass", tmp_path, timeout_s=1.0)
    assert result.timed_out
    assert (result.returncode, result.signal_name) == (None, "SIGKILL")
    assert 1.0 <= result.wall_s < 2.5
    assert "timed out" in result.tail()


def test_timeout_kills_a_sigterm_ignoring_child_and_its_escaped_grandchild(pool, tmp_path):
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
    result = run_code(pool, code, tmp_path, timeout_s=1.5)
    assert result.timed_out and result.returncode is None and result.wall_s < 3.5
    assert result.stdout == "ready\n", "output printed before the kill is kept"
    (grandchild,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(grandchild)
    assert result.leftovers_killed >= 1


def test_setsid_grandchild_left_behind_is_killed(pool, tmp_path):
    result = run_code(pool, SPAWN_SETSID_GRANDCHILD, tmp_path)
    assert result.returncode == 0 and not result.timed_out
    (grandchild,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(grandchild)
    assert result.leftovers_killed == 1


def test_double_forked_daemon_is_killed(pool, tmp_path):
    code = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            with open("pids.txt", "w") as f:
                f.write(str(os.getpid()))
            time.sleep(3600)
        os._exit(0)
    while not os.path.exists("pids.txt"):
        time.sleep(0.01)
    """
    result = run_code(pool, code, tmp_path)
    assert result.returncode == 0
    (daemon,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(daemon)
    assert result.leftovers_killed >= 1


def test_forked_descendants_carry_the_run_marker_in_proc_environ(pool, tmp_path):
    # The last-resort sweep (runner._kill_marked_processes) reads /proc/PID/environ, which a fork without exec
    # inherits from the server: the supervisor stamps the run's token into it.
    code = """
    import json, os
    read_r, read_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked-only grandchild: its environ block is still the server's, stamped
        os.read(read_r, 1)
        os._exit(0)
    block = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
    os.write(read_w, b"x")
    os.waitpid(pid, 0)
    stamped = [e.decode() for e in block if e.startswith(b"KERNELAGENT_SANDBOX_ID=")]
    print(json.dumps([stamped, os.environ["KERNELAGENT_SANDBOX_ID"]]))
    """
    # Unconfined: a confined candidate may not read another process's /proc entries, and this check reads its child's.
    result = run_code(pool, code, tmp_path, confine_filesystem=False)
    stamped, token = json.loads(result.stdout)
    assert stamped == [f"KERNELAGENT_SANDBOX_ID={token}"] and len(token) == 16


def test_nothing_survives_when_the_candidate_kills_its_supervisor(pool, tmp_path):
    # The backstop where the kernel would not stop the signal (no Landlock scope, no uid of its own: UNSCOPED).
    code = (
        SPAWN_SETSID_GRANDCHILD
        + """
    with open("pids.txt", "a") as f:
        f.write(f"{os.getpid()}\\n")
    os.kill(os.getppid(), 9)
    time.sleep(3600)
    """
    )
    before = server_pid(pool)
    result = run_code(pool, code, tmp_path, timeout_s=10, **UNSCOPED)
    assert result.wall_s < 5
    pids = read_pids(tmp_path / "pids.txt")
    assert len(pids) == 2 and not any(is_running(pid) for pid in pids)
    assert "without a status report" in result.stderr
    for _ in range(5):  # killed at once, before the supervisor could say anything: still not the server's fault
        quick = run_code(pool, "import os; os.kill(os.getppid(), 9)", tmp_path, **UNSCOPED)
        assert quick.returncode is None and "without a status report" in quick.stderr
    assert_still_serving(pool, tmp_path)
    assert server_pid(pool) == before, "the server itself was not touched"


def test_server_survives_os_exit_and_a_candidate_killing_its_own_process_group(pool, tmp_path):
    before = server_pid(pool)
    exited = run_code(pool, "import os; print('bye', flush=True); os._exit(5)", tmp_path)
    assert (exited.returncode, exited.stdout) == (5, "bye\n")
    killed = run_code(pool, "import os, signal; os.killpg(0, signal.SIGKILL)", tmp_path)
    assert killed.signal_name == "SIGKILL" and not killed.timed_out
    parents_group = run_code(
        pool, "import os, signal; os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)", tmp_path, **UNSCOPED
    )
    assert parents_group.returncode is None and "without a status report" in parents_group.stderr
    assert_still_serving(pool, tmp_path)
    assert server_pid(pool) == before


def test_pool_restarts_a_server_the_candidate_killed_and_nothing_survives(pool, tmp_path):
    # A confined candidate can guess the server's pid but not signal it (Landlock's signal scope, its own uid): this
    # is the backstop where neither applies.
    before = server_pid(pool)
    code = (
        SPAWN_SETSID_GRANDCHILD
        + f"""
    os.kill({before}, 9)
    print("killed the server", flush=True)
    time.sleep(3600)
    """
    )
    result = run_code(pool, code, tmp_path, timeout_s=2, **UNSCOPED)
    assert result.timed_out and result.stdout == "killed the server\n"
    assert not is_running(before)
    (grandchild,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(grandchild)
    assert_still_serving(pool, tmp_path)
    assert server_pid(pool) != before


def test_memory_limit_stops_a_large_allocation(pool, tmp_path):
    # RLIMIT_AS counts the address space the server already mapped (torch, ~1 GiB), as a cold child's imports would.
    result = run_code(pool, "bytearray(6 * 1024**3)", tmp_path, memory_bytes=3 * 1024**3)
    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_memory_limit_is_skipped_when_disabled_for_gpu_runs(pool, tmp_path):
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY)"
    result = run_code(pool, code, tmp_path, memory_bytes=1024**3, apply_memory_limit=False)
    assert result.stdout.strip() == "True"


# Allocates and touches 3 GiB (bytes * n writes every page), then waits to be killed.
TOUCH_3GIB = "import time\nblob = b'x' * (3 * 1024**3)\ntime.sleep(60)\n"
# A GPU run's memory configuration: no RLIMIT_AS, only the resident-memory watchdog (here at 1 GiB).
GPU_LIKE_MEMORY = {"apply_memory_limit": False, "rss_bytes": 1024**3, "timeout_s": 60}


def test_memory_watchdog_kills_a_3gib_candidate_without_rlimit_as(pool, tmp_path):
    result = run_code(pool, TOUCH_3GIB, tmp_path, **GPU_LIKE_MEMORY)
    assert result.memory_exceeded and not result.timed_out
    assert (result.returncode, result.signal_name) == (-signal.SIGKILL, "SIGKILL")
    assert result.wall_s < 10 and result.rss_peak_bytes > 1024**3
    assert "more than 1 GiB of host memory" in result.stderr
    assert_still_serving(pool, tmp_path)


def test_memory_watchdog_leaves_a_candidate_under_the_limit_alone(pool, tmp_path):
    # The forked candidate starts out sharing the server's imported torch (counted: it is resident anonymous memory).
    code = "import time\nblob = b'x' * (200 * 1024**2)\ntime.sleep(0.3)\nprint('done')\n"
    result = run_code(pool, code, tmp_path, **GPU_LIKE_MEMORY)
    assert (result.returncode, result.stdout, result.memory_exceeded) == (0, "done\n", False), result.tail()
    assert 200 * 1024**2 <= result.rss_peak_bytes < 1024**3


def test_memory_watchdog_counts_a_forked_grandchild(pool, tmp_path):
    code = """
    import os, time
    if os.fork() == 0:
        os.setsid()
        with open("pids.txt", "w") as f:
            f.write(f"{os.getpid()}\\n")
        blob = b"x" * (3 * 1024**3)
        time.sleep(60)
        os._exit(0)
    time.sleep(60)
    """
    result = run_code(pool, code, tmp_path, **GPU_LIKE_MEMORY)
    assert result.memory_exceeded and result.wall_s < 10, result.tail()
    (grandchild,) = read_pids(tmp_path / "pids.txt")
    assert not is_running(grandchild)


def test_verifier_fails_a_host_memory_hog_as_resource_limit_in_the_gpu_configuration(pool, tmp_path, monkeypatch):
    """The corpus's 64 GiB candidate through the real verifier, with the limits a GPU run gets (no RLIMIT_AS)."""
    from kernelagent.verify import verifier

    gpu_limits = verifier.sandbox_limits("cuda", 60, host_memory_bytes=1024**3)
    assert not gpu_limits.apply_memory_limit
    monkeypatch.setattr(verifier, "sandbox_limits", lambda device, timeout_s: gpu_limits)
    harness = verifier.prepare_reference(
        reference_source=(CORPUS / "problems" / "elementwise_add.py").read_text(),
        harness_dir=tmp_path / "harness",
        device="cpu",
        draws=1,
        sizes={},
        precision="spec",
        seed=7,
        timeout_s=60,
        cache_dir=verifier.triton_cache_dir(tmp_path),
    )
    code = (CORPUS / "adversarial" / "elementwise_add__alloc_64gib.py").read_text()
    verdict = verifier.verify_reference_candidate(code, harness, tmp_path / "as_is", timeout_s=60)
    # Where 64 GiB exceed RAM + swap, the kernel's overcommit check refuses the allocation itself (torch raises);
    # on a large host (the 128 GiB GPU machine) the allocation succeeds and only the watchdog stops it.
    assert verdict["failure_class"] == "resource_limit", verdict
    # The same trick at 4 GiB, which every test machine can allocate: only the watchdog can stop it.
    verdict = verifier.verify_reference_candidate(
        code.replace("1 << 34", "1 << 30"), harness, tmp_path / "fits", timeout_s=60
    )
    assert verdict["failure_class"] == "resource_limit", verdict
    assert verdict["reason"].startswith("used more than 1 GiB of host memory"), verdict
    assert verdict["details"]["signal"] == "SIGKILL" and "gpu" not in verdict["details"]


def test_file_size_limit_stops_a_large_write(pool, tmp_path):
    result = run_code(pool, "open('big.bin', 'wb').write(b'x' * 4_000_000)", tmp_path, file_size_bytes=1_000_000)
    assert result.returncode != 0
    assert "File too large" in result.stderr
    assert (tmp_path / "big.bin").stat().st_size <= 1_000_000


def test_cpu_time_limit_counts_from_the_fork(pool, tmp_path):
    result = run_code(pool, "while True: pass", tmp_path, timeout_s=30, cpu_time_s=1)
    assert not result.timed_out and result.signal_name == "SIGXCPU" and result.wall_s < 5


def test_crash_by_signal_is_reported(pool, tmp_path):
    result = run_code(pool, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", tmp_path)
    assert result.signal_name == "SIGSEGV"
    assert result.returncode == -signal.SIGSEGV
    assert not result.timed_out
    assert_still_serving(pool, tmp_path)


def test_a_candidate_reads_only_the_system_python_and_its_folder(pool, tmp_path, file_access_probe):
    assert_unconfined(run_code(pool, file_access_probe, tmp_path, confine_filesystem=False))
    assert_confined(run_code(pool, file_access_probe, tmp_path))


def test_network_is_isolated_from_host_services(pool, tmp_path, local_http_server):
    control = run_code(pool, CONNECT.format(port=local_http_server), tmp_path, isolate_network=False)
    assert control.stdout.strip() == "connected" and not control.network_isolated
    result = run_code(pool, CONNECT.format(port=local_http_server), tmp_path)
    if not result.network_isolated:
        pytest.skip("this OS does not allow a new network namespace")
    assert result.returncode == 7, result.tail()


def test_four_concurrent_requests_from_threads_run_in_parallel(pool, tmp_path):
    # A folder per run, as the verifier gives each candidate: while it runs, a folder belongs to its run's uid.
    def run(i: int) -> str:
        folder = tmp_path / str(i)
        folder.mkdir()
        module = write_module(folder, "import sys, time; time.sleep(0.5); print(sys.argv[1])")
        return pool.run_module(module, [str(i)], cwd=folder, limits=SandboxLimits(), env=INTERPRET_ENV).stdout

    started = time.monotonic()
    with ThreadPoolExecutor(4) as threads:
        assert list(threads.map(run, range(8))) == [f"{i}\n" for i in range(8)]
    assert time.monotonic() - started < 8 * 0.5, "requests must not be serialised"


# --------------------------------------------------------------------------- warm-specific behaviour


JIT_ON_CPU = """
import torch, triton, triton.language as tl

@triton.jit
def add_one(x_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(x_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1, mask=mask)

x = torch.arange(100, dtype=torch.float32)
add_one[(triton.cdiv(100, 32),)](x, 100, BLOCK=32)
print(type(add_one).__name__, bool(torch.equal(x, torch.arange(100, dtype=torch.float32) + 1)))
"""


def test_interpret_request_runs_a_triton_kernel_on_cpu_tensors(pool, tmp_path):
    result = run_code(pool, JIT_ON_CPU, tmp_path)
    assert result.stdout.strip() == "InterpretedFunction True", result.tail()


def test_request_env_reaches_c_level_getenv_before_the_candidate_imports(pool, tmp_path):
    # Triton reads its knobs with C getenv at use time; CUDA reads CUDA_VISIBLE_DEVICES at its (lazy) init.
    code = """
    import os, torch, triton
    print(triton.knobs.cache.dir, triton.knobs.runtime.interpret, os.environ["CUDA_VISIBLE_DEVICES"],
          torch.cuda.is_initialized())
    """
    env = INTERPRET_ENV | {"TRITON_CACHE_DIR": str(tmp_path / "tcache"), "CUDA_VISIBLE_DEVICES": "3"}
    result = run_code(pool, code, tmp_path, env=env)
    # A confined run's Triton cache is its own, whatever env asked (runner.own_caches).
    assert result.stdout.split() == [str(tmp_path / ".triton-cache"), "True", "3", "False"], result.tail()


def test_mode_mismatch_is_refused(pool, tmp_path):
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        pool.run_module("anything", [], cwd=tmp_path, limits=SandboxLimits(), env={})


def test_run_sandboxed_warm_is_a_drop_in_for_python_m(pool, tmp_path):
    module = write_module(tmp_path, "import sys; print('torch' in sys.modules)")  # preloaded only in a warm child
    warm = run_sandboxed_warm([sys.executable, "-m", module], cwd=tmp_path, env=INTERPRET_ENV)
    cold = run_sandboxed_warm([sys.executable, f"{module}.py"], cwd=tmp_path, env=INTERPRET_ENV)
    assert (warm.stdout, cold.stdout) == ("True\n", "False\n")
    assert _module_and_args(["/bin/python-other", "-m", "x"]) == (None, [])


def test_a_closed_pool_leaves_no_server(tmp_path):
    with WarmPool(interpret=True, preload=()) as private:
        private.warm_up()
        pid = server_pid(private)
        assert run_code(private, "print(1)", tmp_path).stdout == "1\n"
    assert not is_running(pid)


def test_real_candidate_report_matches_the_cold_path(pool, tmp_path):
    from kernelagent.verify import verifier

    harness = verifier.prepare_reference(
        reference_source=(CORPUS / "problems" / "elementwise_add.py").read_text(),
        harness_dir=tmp_path / "harness",
        device="cpu",
        draws=2,
        sizes={},
        precision="spec",
        seed=7,
        timeout_s=60,
        cache_dir=verifier.triton_cache_dir(tmp_path),
    )
    code = (CORPUS / "honest" / "elementwise_add__block1024.py").read_text()
    cold = verifier.verify_reference_candidate(code, {**harness, "warm": False}, tmp_path / "cold", timeout_s=60)
    assert cold["passed"], cold

    # The same judge, the same candidate, forked from this test's own pool instead of started cold.
    workdir = tmp_path / "warm"
    verifier._stage_workdir(code, workdir)
    options = {"entry": "ModelNew", "dtype": None}
    outcome, run = verifier.judge_of(harness, None, 60).session(
        options,
        lambda stdin_fd: pool.run_module(
            "kernelagent.verify.candidate_runner",
            [str(workdir.resolve())],
            cwd=workdir,
            limits=verifier.sandbox_limits("cpu", 60),
            env=verifier.child_env(interpret=True, cache_dir=Path(harness["cache_dir"])),
            stdin_fd=stdin_fd,
        ),
    )
    assert run.returncode == 0 and run.network_isolated, run.tail()
    warm = verifier.verdict_of(outcome, run, 60)
    assert warm["passed"], warm
    assert outcome["draws_judged"] == outcome["draws_planned"] == cold["details"]["draws_planned"] == len(harness["plan"])
    assert outcome["launches"] == warm["details"]["launches"] == cold["details"]["launches"]


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.skipif(not _cuda_available(), reason="needs a CUDA GPU")
def test_gpu_pool_children_can_initialise_cuda_on_their_slot(tmp_path):
    code = """
    import torch
    x = torch.ones(4, device="cuda") * 2
    print(torch.cuda.device_count(), float(x.sum()))
    """
    from kernelagent.verify.verifier import confines_filesystem

    gpu_limits = {"apply_memory_limit": False, "confine_filesystem": confines_filesystem("cuda")}  # as GPU runs get
    with WarmPool(interpret=False) as gpu_pool:
        gpu_pool.warm_up()
        for _ in range(2):  # twice: a second fork must still be able to initialise CUDA
            env = {"CUDA_VISIBLE_DEVICES": "0", "PATH": os.environ["PATH"]}
            result = run_code(gpu_pool, code, tmp_path, env=env, **gpu_limits)
            assert result.stdout.split() == ["1", "8.0"], result.tail()
        # A real Triton launch on the GPU: compiles (or reuses the shared cache) and builds the launcher in the child.
        from kernelagent.verify.verifier import child_env

        gpu_jit = JIT_ON_CPU.replace("torch.arange(100, dtype=torch.float32)", "torch.arange(100., device='cuda')")
        env = child_env(interpret=False, cache_dir=tmp_path / "tcache") | {"CUDA_VISIBLE_DEVICES": "0"}
        env.pop("TRITON_INTERPRET", None)
        result = run_code(gpu_pool, gpu_jit, tmp_path, env=env, timeout_s=300, **gpu_limits)
        assert result.stdout.strip() == "JITFunction True", result.tail()
