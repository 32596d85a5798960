"""Can a GPU candidate run confined? One run on the GPU machine answers for each configuration the sandbox may use.

    python3 benchmarks/cuda_confinement_probe.py [--out probe.json]

For each variant a child is forked (torch imported, CUDA untouched, as from the warm pool's server), confined with the
sandbox's own primitives and the product's GPU limits (verifier.sandbox_limits("cuda"): Landlock with
filesystem.gpu_rules, ABI 6 scopes where the kernel has them), and then, step by step:
  cuda_init  initialises CUDA and sums a tensor on the GPU;
  triton     compiles and launches a Triton kernel whose source lies in the candidate's folder, with its cache there;
  ipc        maps a CUDA tensor lent by another process through torch's legacy CUDA IPC (what the judge does,
             verify/wire.py) and checks its values.
The lender is a separate forked process, started before any CUDA use; with --uid it runs under the candidate's uid and
undumpable, as a judge sharing the candidates' uid would.

Variants: "unconfined" (control), "confined" (the product's GPU rules, our uid), "confined+uid" (and the candidate and
the lender as an unprivileged uid: the design for uid separation on the GPU), "confined+uid, lender ours" (the
candidate alone under that uid: can CUDA IPC cross uids?), "confined+w:/" (everything writable: tells whether any
Landlock rule at all is the trouble), and "confined+w:/proc" and the like (which folder holds a missing write right).
If "confined" fails on an image, run the agent there with KERNELAGENT_GPU_CONFINED=0 (verdicts record it) and fix
the rule the failing step names (kernelagent/sandbox/filesystem.gpu_rules, compilers_for_triton).
Seen on an H100 (2026-11-25, the CPU rules only, no /dev/nvidia* write rule): every read-only variant failed CUDA init
with error 304; only "w:/" worked. On an H200 (2026-11-30, with the driver's nodes writable) still error 304, and
Triton could not run Ubuntu's ldconfig script under "w:/": gpu_rules now lets a run write its own threads' names
(/proc/self/task) and runs get TRITON_LIBCUDA_PATH.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import sys
import tempfile
import traceback
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from kernelagent.sandbox.filesystem import libcuda_folder  # noqa: E402
from kernelagent.sandbox.identity import reveal_plan  # noqa: E402
from kernelagent.sandbox.reaper import _reveal, apply_limits_in_child  # noqa: E402
from kernelagent.sandbox.runner import own_caches, with_filesystem_rules  # noqa: E402
from kernelagent.verify import verifier  # noqa: E402

PROBE_UID = 60999  # below the sandbox's own pool (61000+), so no live run holds it
VARIANTS = {
    "unconfined": {"confine": False},
    "confined": {"confine": True},
    "confined+uid": {"confine": True, "uid": PROBE_UID},
    "confined+uid, lender ours": {"confine": True, "uid": PROBE_UID, "lender_uid": None},
    "confined+w:/": {"confine": True, "extra_write": ["/"]},
    # CPU runs may not make Unix sockets (reaper.seccomp_program); does the driver need one of its own?
    "confined, no unix sockets": {"confine": True, "no_unix_sockets": True},
}
# Run only where "confined" fails and "w:/" works: which top-level folder holds the missing write right.
NARROWING = {f"confined+w:{top}": {"confine": True, "extra_write": [top]} for top in ("/proc", "/dev", "/sys", "/tmp", "/run")}
KERNEL = '''import triton
import triton.language as tl


@triton.jit
def add_one(x_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(x_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) + 1, mask=mask)
'''


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None)
    parser.add_argument("--only", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    if torch.cuda.is_initialized():
        raise SystemExit("CUDA must stay uninitialised in the probe's parent")
    results = [probe(name, VARIANTS[name]) for name in args.only]
    verdict = {r["variant"]: works(r) for r in results}
    if verdict.get("confined") is False and verdict.get("confined+w:/"):
        narrowing = [probe(name, variant) for name, variant in NARROWING.items()]
        results += narrowing
        verdict |= {r["variant"]: works(r) for r in narrowing}
    summary = {"results": results, "works": verdict, "gpu_confinement_ok": verdict.get("confined", False)}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


def works(result: dict) -> bool:
    return all(result.get(step) == "ok" for step in ("cuda_init", "triton", "ipc"))


def probe(name: str, variant: dict) -> dict:
    uid = variant.get("uid") if os.geteuid() == 0 else None
    if variant.get("uid") and uid is None:
        return {"variant": name, "skipped": "needs root to change uid"}
    cwd = Path(tempfile.mkdtemp(prefix=f"cuda-probe-{name.replace(':', '').replace('/', '')}-"))
    os.chmod(cwd, 0o755)
    env = {"HOME": str(cwd / "home"), "TMPDIR": str(cwd / "tmp"), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    for folder in ("home", "tmp"):
        (cwd / folder).mkdir()
    (cwd / "probe_kernel.py").write_text(KERNEL)
    own_caches(cwd, env)
    if libcuda := libcuda_folder():
        env["TRITON_LIBCUDA_PATH"] = libcuda  # as the sandbox's own child env has it (runner._child_env)
    limits = verifier.sandbox_limits("cuda", 120)
    limits = replace(limits, confine_filesystem=variant["confine"], unprivileged=False)
    limits = with_filesystem_rules(limits, cwd, env)
    limits = replace(limits, writable_paths=(*limits.writable_paths, *variant.get("extra_write", [])))
    if uid is not None:
        plan = reveal_plan((*limits.readable_paths, *limits.writable_paths), cwd)
        limits = replace(limits, run_as_uid=uid, reveal=plan)
        for path in [cwd, *cwd.rglob("*")]:
            os.lchown(path, uid, uid)
    if variant.get("no_unix_sockets"):
        limits = replace(limits, gpu=False)  # the GPU rules stay (computed above); the seccomp filter is the CPU one
    lender_uid = variant.get("lender_uid", uid)
    lender_pid, handle = start_lender(lender_uid, limits.reveal if lender_uid is not None else ())
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(result_r)
        os.write(result_w, json.dumps(candidate(name, limits, env, cwd, handle)).encode())
        os._exit(0)
    os.close(result_w)
    data = b""
    while chunk := os.read(result_r, 65536):
        data += chunk
    os.close(result_r)
    os.waitpid(pid, 0)
    os.kill(lender_pid, 9)
    os.waitpid(lender_pid, 0)
    return json.loads(data) if data else {"variant": name, "error": "the candidate died without a report"}


def start_lender(uid: int | None, reveal: tuple) -> tuple[int, str]:
    """A forked process that puts a tensor on the GPU and lends it by CUDA IPC (returns its pid and the handle)."""
    handle_r, handle_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(handle_r)
        try:
            if uid is not None:
                if reveal:
                    _reveal(reveal)
                os.setgroups([])
                os.setresgid(uid, uid, uid)
                os.setresuid(uid, uid, uid)
                import ctypes  # noqa: PLC0415

                ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: as the judge would be
            from torch.multiprocessing.reductions import reduce_tensor  # noqa: PLC0415

            lent = torch.arange(1024, dtype=torch.float32, device="cuda")
            torch.cuda.synchronize()
            _, args = reduce_tensor(lent)
            os.write(handle_w, base64.b64encode(pickle.dumps(args)) + b"\n")
        except BaseException:  # noqa: B036
            os.write(handle_w, b"ERROR " + traceback.format_exc().encode().replace(b"\n", b" | ") + b"\n")
        os.close(handle_w)
        import time  # noqa: PLC0415

        time.sleep(600)
        os._exit(0)
    os.close(handle_w)
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(handle_r, 65536)
        if not chunk:
            break
        line += chunk
    os.close(handle_r)
    return pid, line.decode().strip()


def candidate(name: str, limits, env: dict, cwd: Path, handle: str) -> dict:  # noqa: ANN001
    report: dict = {"variant": name}
    try:
        report["confinement"] = apply_limits_in_child(limits)
        os.environ.update(env)
        tempfile.tempdir = None  # the parent's /tmp was cached by mkdtemp above; as the fork server does, re-read TMPDIR
        os.chdir(cwd)
        sys.path.insert(0, str(cwd))
    except BaseException:  # noqa: B036
        report["setup"] = traceback.format_exc()[-600:]
        return report
    report["cuda_init"] = step(lambda: torch.ones(2, device="cuda").sum().item() == 2.0)
    report["triton"] = step(lambda: launch_triton())
    report["ipc"] = step(lambda: map_lent(handle))
    report["shm_files"] = sorted(os.listdir("/dev/shm"))[:20] if os.access("/dev/shm", os.R_OK) else "unreadable"
    return report


def step(action) -> str:  # noqa: ANN001
    try:
        return "ok" if action() else "wrong result"
    except BaseException as err:  # noqa: B036 - the error is the finding
        return f"FAIL {type(err).__name__}: {str(err)[:300]}"


def launch_triton() -> bool:
    import probe_kernel  # noqa: PLC0415 - lies in the candidate's folder

    x = torch.zeros(1000, device="cuda")
    probe_kernel.add_one[(4,)](x, 1000, BLOCK=256)
    return bool((x == 1).all().item()) and any(Path(os.environ["TRITON_CACHE_DIR"]).iterdir())


def map_lent(handle: str) -> bool:
    if handle.startswith("ERROR"):
        raise RuntimeError(f"the lender failed: {handle[:400]}")
    from torch.multiprocessing.reductions import rebuild_cuda_tensor  # noqa: PLC0415

    lent = rebuild_cuda_tensor(*pickle.loads(base64.b64decode(handle)))
    return float(lent.sum().item()) == float(sum(range(1024)))


if __name__ == "__main__":
    sys.exit(main())
