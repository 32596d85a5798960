"""Runs the escape corpus (tests/escape/attacks/) through the real verifier, with the static policy bypassed, and checks
from outside that each attack's effect is absent: files, processes, signals, not only the verdict.

    python3 tests/escape/run.py [--device cpu|cuda] [--out docs/sandbox-cpu.md]

Each attack is a candidate whose module-level code attacks (as one that reached exec past the policy would), then
defines an honest ModelNew. Used by tests/test_escape.py (CPU); on the GPU machine by hand, with --device cuda.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import site
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ATTACKS = Path(__file__).resolve().parent / "attacks"
sys.path.insert(0, str(ROOT))

from kernelagent.sandbox import filesystem, gpu_placement  # noqa: E402
from kernelagent.sandbox.warm import shared_pool  # noqa: E402
from kernelagent.verify import verifier  # noqa: E402

PROBLEM = ROOT / "tests" / "corpus" / "problems" / "elementwise_add.py"
HONEST = ROOT / "tests" / "corpus" / "honest" / "elementwise_add__block1024.py"
FLOOD = 1000  # processes, then threads, a flood tries to start
# The attack's own helpers, in the process that attacks.
ATTACK_PRELUDE = '''import json, os, sys, time
ESCAPE = json.loads({escape!r})


def report(**found):
    print("ESCAPE-REPORT " + json.dumps(found, default=str), flush=True)


def attempt(action):
    try:
        result = action()
        return "ok" if result is None or isinstance(result, int) else "ok: " + str(result)[:200]
    except BaseException as err:  # noqa: B036
        return type(err).__name__


def keep(path, text):
    for target in (path, os.path.basename(path)):
        attempt(lambda target=target: open(target, "w").write(text))


'''
# The candidate's module: it leaves the runtime guard behind first, then runs the attack there: what the sandbox must
# contain is a process that no rule of ours watches any more. `_posixsubprocess.fork_exec` raises no audit event, so
# it starts a fresh interpreter without the guard's hook; the kernel (Landlock's EXECUTE right) refuses that in use
# (attack exec_route), and the corpus lets this one interpreter be executed (filesystem.EXTRA_EXECUTABLES_VAR) so
# the kernel's other layers are tested against a process that controls itself.
CANDIDATE = '''import os, sys, _posixsubprocess
os.environ["ESCAPE_SUPERVISOR_PID"] = str(os.getppid())  # the sandbox's supervisor (warm) or reaper (cold)


def _unguarded(code):
    program = os.fsencode(sys.executable)
    err_r, err_w = os.pipe()
    common = [[program, b"-c", code.encode()], [program], True, (err_w,), None, None, -1, -1, -1, -1, -1, -1, err_r, err_w,
              True, False, -1, None, None, None, -1, None]
    pid = _posixsubprocess.fork_exec(*common, False)  # allow_vfork: 23 arguments on Python 3.11 to 3.13
    os.close(err_w)
    failure = os.read(err_r, 4096)
    os.close(err_r)
    os.waitpid(pid, 0)
    if failure:
        print("ESCAPE-SPAWN-REFUSED", failure, file=sys.stderr)


_unguarded({attack!r})


'''
# Attacks that run in the candidate's own (guarded) process: they try to leave it.
IN_PROCESS = {"exec_route"}
# What only a uid of the run's own contains (the agent must be root): without one the kernel does not count the
# run's tasks apart from the agent's.
NEEDS_OWN_UID = {"keyrings"}
# What a kernel without Landlock's ABI 6 scopes cannot contain unless the run has a uid of its own.
NEEDS_SCOPES_OR_UID = {"signals"}
_signalled: list[int] = []


def run_escapes(device: str, work: Path, timeout_s: float = 60.0) -> tuple[list[dict], dict]:
    """(one row per attack, the setting), each row with contained, how and the verdict."""
    setting = _plant_canaries(work)
    harness = verifier.prepare_reference(
        reference_source=PROBLEM.read_text(),
        harness_dir=work / "harness",
        device=device,
        draws=1,
        sizes={},
        precision="spec",
        timeout_s=300,
        cache_dir=setting["shared_cache"],
        extra_draws=False,
    )
    shared_pool(device == "cpu").warm_up()
    with gpu_placement(device) as gpu:  # on a GPU machine: the judge of the slot the candidates will get
        judge_pid = verifier.judge_of(harness, gpu, timeout_s).process.pid
    setting |= {
        "judge_pid": judge_pid,
        "fork_server_pid": shared_pool(device == "cpu")._servers[0].info["pid"],
    }
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: _signalled.append(signum))
    rows = []
    try:
        for attack in sorted(ATTACKS.glob("*.py")):
            rows.append(_run_one(attack, harness, work, setting, timeout_s))
    finally:
        os.environ.pop(filesystem.EXTRA_EXECUTABLES_VAR, None)
        signal.signal(signal.SIGUSR2, previous)
        _clean_up(setting)
    return rows, setting


def _plant_canaries(work: Path) -> dict:
    tag = f"{os.getpid()}-{os.urandom(3).hex()}"
    secret = f"sk-escape-{os.urandom(8).hex()}"
    os.environ["KERNELAGENT_ESCAPE_API_KEY"] = secret  # the agent's key, as cli.py would hold it
    os.environ["ESCAPE_CANARY"] = secret  # a variable that is not secret-looking, but not allowlisted either
    home_secret = Path.home() / ".config" / f"kernelagent-escape-{tag}" / "key"
    home_secret.parent.mkdir(parents=True, exist_ok=True)
    home_secret.write_text(secret)
    canary = ROOT / "kernelagent" / f"_escape_canary_{tag.replace('-', '_')}.py"
    canary.write_text("# canary of tests/escape: nothing may append to me\n")
    shared_cache = work / "shared-triton-cache"
    shared_cache.mkdir(parents=True, exist_ok=True)
    return {
        "tag": tag,
        "secret": secret,
        "home_secret": str(home_secret),
        "canary": str(canary),
        "canary_text": canary.read_text(),
        "planted_module": str(ROOT / "kernelagent" / "verify" / f"_planted_{tag.replace('-', '_')}.py"),
        "planted_pth": str(Path(site.getsitepackages()[0]) / f"_planted_{tag.replace('-', '_')}.pth"),
        "shared_cache": str(shared_cache),
        "agent_pid": os.getpid(),
        "flood": FLOOD,
        "ipc_key": int.from_bytes(os.urandom(3), "big") | 0x5E000000,
        "key_name": f"escape-{tag}",
        "agent_key_name": _plant_agent_key(f"escape-agent-{tag}", secret),
        "listener_path": _start_listener(f"/tmp/escape-{tag}.sock"),
    }


def _plant_agent_key(name: str, secret: str) -> str:
    """A key holding the agent's secret in the agent uid's user keyring, where a real agent's credentials could be."""
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    add_key = 248 if os.uname().machine == "x86_64" else 217
    libc.syscall(add_key, b"user", name.encode(), secret.encode(), len(secret), -4)
    return name


_received: list[bytes] = []


def _start_listener(path: str) -> str:
    """A Unix socket any uid may connect to, outside every run's network namespace; what reaches it is recorded."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(4)
    listener.settimeout(0.5)

    def serve() -> None:
        while Path(path).exists():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    _received.append(connection.recv(256) or b"(connected)")
        listener.close()

    threading.Thread(target=serve, daemon=True, name="escape-listener").start()
    return path


def _run_one(attack: Path, harness: dict, work: Path, setting: dict, timeout_s: float) -> dict:
    escape = {k: v for k, v in setting.items() if k != "canary_text"}
    attack_source = ATTACK_PRELUDE.format(escape=json.dumps(escape)) + attack.read_text()
    in_process = attack.stem in IN_PROCESS
    code = (attack_source + "\n\n" if in_process else CANDIDATE.format(attack=attack_source)) + HONEST.read_text()
    if in_process:
        os.environ.pop(filesystem.EXTRA_EXECUTABLES_VAR, None)
    else:
        os.environ[filesystem.EXTRA_EXECUTABLES_VAR] = os.path.realpath(sys.executable)
    workdir = work / "candidates" / attack.stem
    started = time.perf_counter()
    verdict = verifier.judge_without_policy(code, harness, workdir, timeout_s=timeout_s)
    wall_s = time.perf_counter() - started
    time.sleep(0.2)  # anything that survived has had time to act
    log = (workdir / "sandbox.log").read_text(errors="replace") if (workdir / "sandbox.log").exists() else ""
    if os.environ.get("ESCAPE_DEBUG"):
        print(attack.stem, log[-3000:], file=sys.stderr)
    found = _report_in(log)
    contained, how = CHECKS[attack.stem](found, verdict, workdir, setting, log)
    return {
        "attack": attack.stem,
        "class": attack.read_text().splitlines()[0].split("]")[0].lstrip("# ["),
        "contained": contained,
        "how": how,
        "found": found,
        "verdict": verdict,
        "wall_s": round(wall_s, 2),
    }


def _report_in(log: str) -> dict | None:
    for line in log.splitlines():
        if line.startswith("ESCAPE-REPORT "):
            return json.loads(line.split(" ", 1)[1])
    return None


# --------------------------------------------------------------------------- checks: (contained, how)


def _secret_nowhere(verdict: dict, log: str, setting: dict) -> bool:
    loot = Path(f"/tmp/escape-{setting['tag']}-loot")
    return setting["secret"] not in json.dumps(verdict) + log and not loot.exists()


def _refused(tries: dict) -> bool:
    return bool(tries) and not any(str(value).startswith("ok") for value in tries.values())


def check_secret_proc_environ(found, verdict, workdir, setting, log):
    ran = found is not None
    return ran and _secret_nowhere(verdict, log, setting) and not found["secret_found"], (
        f"{found and found['readable_other_procs']} /proc entries of other processes readable, all of its own run "
        "(Landlock allows /proc/self of the run's first process); key absent from /tmp, the verdict and the log"
    )


def check_secret_home(found, verdict, workdir, setting, log):
    ran = found is not None
    return ran and _secret_nowhere(verdict, log, setting) and _refused(found["tries"]), (
        f"the agent's ~/.config refused ({found and sorted(set(found['tries'].values()))})"
    )


def check_secret_env(found, verdict, workdir, setting, log):
    ran = found is not None
    return ran and found["canary"] is None and not found["leaked"] and _secret_nowhere(verdict, log, setting), (
        "allowlisted, secret-free environment: neither the key nor an unlisted variable reached the candidate"
    )


def check_write_source(found, verdict, workdir, setting, log):
    untouched = Path(setting["canary"]).read_text() == setting["canary_text"]
    absent = not Path(setting["planted_module"]).exists() and not Path(setting["planted_pth"]).exists()
    return found is not None and untouched and absent, (
        f"package file unchanged, no module or .pth planted ({found and sorted(set(found['tries'].values()))})"
    )


def check_triton_cache_poison(found, verdict, workdir, setting, log):
    shared_clean = not (Path(setting["shared_cache"]) / f"escape-{setting['tag']}").exists()
    own = found is not None and Path(found["triton_cache_dir"]).is_relative_to(found["cwd"])
    gone = not (workdir / ".triton-cache").exists()
    return shared_clean and own and gone, (
        "shared cache untouched (refused: "
        f"{found and found['tries']['shared']}); the run's TRITON_CACHE_DIR was inside its own folder, removed after"
    )


def check_device_nodes(found, verdict, workdir, setting, log):
    absent = not Path(f"/dev/escape-{setting['tag']}").exists() and not (workdir / "loop-node").exists()
    return found is not None and absent and _refused(found["tries"]), (
        f"mknod and opens refused ({found and sorted(set(found['tries'].values()))}); capabilities "
        f"{verdict['details'].get('confinement', {}).get('capabilities')}"
    )


def check_persistence(found, verdict, workdir, setting, log):
    left = [p for p in ("/dev/shm", "/tmp", "/var/tmp", "/dev/mqueue") if Path(p, f"escape-{setting['tag']}").exists()]
    return found is not None and not left, f"nothing left in /dev/shm, /tmp, /var/tmp, /dev/mqueue (left: {left})"


def check_survivors(found, verdict, workdir, setting, log):
    pids = (found or {}).get("pids", [])
    alive = [pid for pid in pids if _is_running(pid)]
    return len(pids) == 3 and not alive, (
        f"{len(pids)} lingering processes (double fork, setsid, SIGTERM ignored) all dead after the run; "
        f"{verdict['details'].get('leftovers_killed')} killed by the sandbox"
    )


def check_signals(found, verdict, workdir, setting, log):
    alive = _is_running(setting["fork_server_pid"]) and (not setting["judge_pid"] or _is_running(setting["judge_pid"]))
    supervised = "without a status report" not in log  # the supervisor lived to report
    return found is not None and alive and supervised and not _signalled and _refused(found["tries"]), (
        f"fork server, supervisor, judge and agent untouched ({found and sorted(set(found['tries'].values()))})"
    )


def check_floods(found, verdict, workdir, setting, log):
    if found is None:  # killed before it could report: by the watchdog's task count (a run keeping our uid)?
        killed = bool(verdict["details"].get("tasks_exceeded")) and verdict["failure_class"] == "resource_limit"
        return killed, ("killed by the watchdog's task count (a uid RLIMIT_NPROC cannot bound), the tree with it"
                        if killed else "the attack did not report")
    alive = [pid for pid in found["pids"] if _is_running(pid)]
    tasks = verdict["details"].get("confinement", {}).get("max_tasks")
    stopped = found["processes"] < FLOOD and found["threads"] < FLOOD
    return stopped and not alive, (
        f"{found['processes']} processes, {found['threads']} threads before refusal (RLIMIT_NPROC {tasks} "
        "on the run's own uid); none alive after"
    )


def check_disk_fill(found, verdict, workdir, setting, log):
    size = sum(p.stat().st_blocks * 512 for p in workdir.rglob("*") if p.is_file())
    killed = bool(verdict["details"].get("disk_exceeded")) and verdict["failure_class"] == "resource_limit"
    peak_mib = (verdict["details"].get("folder_peak_bytes") or 0) / 1024**2
    return killed and size < 1024**2, (
        f"killed once the folder passed its quota (peak {peak_mib:.0f} MiB); folder reduced to {size // 1024} KiB after"
    )


def check_exec_route(found, verdict, workdir, setting, log):
    started = [name for name, outcome in (found or {}).get("tries", {}).items() if outcome.startswith("ok")]
    return found is not None and not started, (
        f"no interpreter without the guard started ({found and found['tries']}): the guard matches programs by real "
        "path and inode, Landlock lets the run execute only Triton's compilers (none on the CPU)"
    )


def check_sysv_ipc(found, verdict, workdir, setting, log):
    left = _sysv_objects_with_key(setting["ipc_key"])
    ipc_ns = verdict["details"].get("confinement", {}).get("ipc_isolated")
    return found is not None and not left, (
        f"created in the run {found and found['made']} (IPC namespace of its own: {ipc_ns}); none with its key left "
        f"on the host after the run (left: {left})"
    )


def check_keyrings(found, verdict, workdir, setting, log):
    if found is None:
        return False, "the attack did not report"
    left = _keys_of(found["uid"], setting["key_name"])
    return not left, f"added {found['added']} as uid {found['uid']}; none of those keys found as that uid after the run"


def check_keyring_read(found, verdict, workdir, setting, log):
    if found is None:
        return False, "the attack did not report"
    return not found["loot"] and _secret_nowhere(verdict, log, setting), (
        f"link, search, read: {found['tries']} (errno {found['errno']}); the agent's key read: {bool(found['loot'])}"
    )


def check_unix_socket(found, verdict, workdir, setting, log):
    time.sleep(0.3)  # the listener records what reached it
    return found is not None and not _received, f"tries {found and found['tries']}; the listener received {_received}"


def check_capture_swap(found, verdict, workdir, setting, log):
    log_file = workdir / "sandbox.log"
    regular = log_file.is_file() and not log_file.is_symlink()
    return found is not None and regular and verdict["failure_class"] != "timeout", (
        f"tries {found and found['swapped']}; verdict {verdict['failure_class'] or 'pass'} in time, stdout/stderr "
        "captured in unnamed files read back by descriptor, sandbox.log rewritten as a regular file"
    )


def check_others_limits_metadata(found, verdict, workdir, setting, log):
    limits = Path(f"/proc/{setting['agent_pid']}/limits").read_text()
    nofile = next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3]
    canary = Path(setting["canary"])
    mode = canary.stat().st_mode & 0o7777
    xattrs = _xattrs(canary)
    untouched = nofile != "4" and not mode & 0o6000 and canary.stat().st_uid == os.getuid() and not xattrs
    return found is not None and untouched and _refused(found["tries"]), (
        f"tries {found and found['tries']}; the agent's open-file limit {nofile}, the canary's mode {mode:o}, "
        f"its extended attributes {xattrs}"
    )


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path)
    except OSError:
        return []


def check_io_uring(found, verdict, workdir, setting, log):
    return found is not None and _refused(found["tries"]), f"tries {found and found['tries']}"


def check_disk_unlinked(found, verdict, workdir, setting, log):
    killed = bool(verdict["details"].get("disk_exceeded")) and verdict["failure_class"] == "resource_limit"
    peak_mib = (verdict["details"].get("folder_peak_bytes") or 0) / 1024**2
    return killed, f"killed once unlinked-but-open files passed the quota (peak {peak_mib:.0f} MiB counted)"


CHECKS = {name[len("check_") :]: fn for name, fn in dict(globals()).items() if name.startswith("check_")}


def _is_running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _sysv_objects_with_key(key: int) -> list[str]:
    left = []
    for kind in ("shm", "sem", "msg"):
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        left += [f"{kind} {line.split()[1]}" for line in lines if int(line.split()[0]) == key]
    return left


def _keys_of(uid: int, name: str) -> int:
    """How many keys named name the uid's user and user-session keyrings hold, looked up as that uid (root only)."""
    if os.geteuid() != 0 or uid == 0:
        return 0
    pid = os.fork()
    if pid == 0:
        import ctypes  # noqa: PLC0415

        libc = ctypes.CDLL(None, use_errno=True)
        os.setresuid(uid, uid, 0)
        keyctl = 250 if os.uname().machine == "x86_64" else 219
        found = sum(libc.syscall(keyctl, 10, ring, b"user", name.encode(), 0) >= 0 for ring in (-4, -5))
        os._exit(found)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _unlink_agent_key(name: str) -> None:
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    keyctl = 250 if os.uname().machine == "x86_64" else 219
    key = libc.syscall(keyctl, 10, -4, b"user", name.encode(), 0)  # KEYCTL_SEARCH
    if key >= 0:
        libc.syscall(keyctl, 9, key, -4)  # KEYCTL_UNLINK


def _clean_up(setting: dict) -> None:
    """Whatever an attack managed is undone here, so a failed containment does not outlive the check."""
    tag = setting["tag"]
    for path in [*Path("/").glob(f"dev/escape-{tag}*"), *Path("/").glob(f"tmp/escape-{tag}*")]:
        path.unlink(missing_ok=True)
    for folder in ("/dev/shm", "/var/tmp", "/dev/mqueue"):
        Path(folder, f"escape-{tag}").unlink(missing_ok=True)
    for flag in ("-M", "-S", "-Q"):  # SysV objects with the attack's key, if any were left on the host
        subprocess.run(["ipcrm", flag, str(setting["ipc_key"])], capture_output=True, check=False)
    _unlink_agent_key(setting["agent_key_name"])
    for key in ("planted_module", "planted_pth", "canary"):
        Path(setting[key]).unlink(missing_ok=True)
    shutil.rmtree(Path(setting["home_secret"]).parent, ignore_errors=True)


# --------------------------------------------------------------------------- the table


def render(rows: list[dict], device: str, seconds: float) -> str:
    confinement = rows[0]["verdict"]["details"].get("confinement", {}) if rows else {}
    details = rows[0]["verdict"]["details"] if rows else {}
    lines = [
        f"# Escape corpus ({device})",
        "",
        f"Command: `python3 tests/escape/run.py --device {device}` on {platform.node() or 'this machine'} "
        f"(Linux {platform.release()}, Python {platform.python_version()}, agent uid {os.getuid()}); "
        f"{len(rows)} attacks in {seconds:.0f}s. Every candidate was judged with the static policy bypassed; "
        "\"contained\" is checked from outside (files, processes, signals), not from the verdict.",
        "",
        f"Confinement the runs reported: filesystem_confined={str(details.get('filesystem_confined')).lower()}, "
        f"network_isolated={str(details.get('network_isolated')).lower()}, "
        f"landlock_abi={confinement.get('landlock_abi')}, scopes={confinement.get('scopes')}, "
        f"ipc_isolated={str(confinement.get('ipc_isolated')).lower()}, "
        f"own_session_keyring={str(confinement.get('own_session_keyring')).lower()}, "
        f"uid={confinement.get('uid')} ({confinement.get('uid_note')}), max_tasks={confinement.get('max_tasks')}, "
        f"CapEff={confinement.get('capabilities')}.",
        "",
        f"Contained: **{sum(r['contained'] for r in rows)} of {len(rows)}**.",
        "",
        "| attack | class | contained | how | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        verdict = "pass" if r["verdict"]["passed"] else r["verdict"]["failure_class"]
        how = str(r["how"]).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{r['attack']}` | {r['class']} | {'yes' if r['contained'] else '**NO**'} | {how} | {verdict} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="escape-") as tmp:
        rows, _ = run_escapes(args.device, Path(tmp), args.timeout)
    table = render(rows, args.device, time.time() - started)
    if args.out:
        Path(args.out).write_text(table)
    print(table)
    print(json.dumps([{k: r[k] for k in ("attack", "contained", "found", "wall_s")} for r in rows], indent=1))
    return 0 if all(r["contained"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
