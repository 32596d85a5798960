"""RayExecutor: each verification is a Ray task (one GPU for cuda harnesses, else one CPU) on any node of a cluster.

No shared filesystem is needed: the candidate's code and the harness's small files travel as task arguments (sent
once per harness through Ray's object store), the task verifies in a temporary folder on its node, and the verdict
comes back with the work folder's files, which are written where a local verification would have left them.
Harnesses larger than SHIP_LIMIT_BYTES are not shipped: their paths are used as they are (then runs/ must be on a
filesystem every node shares). Every node needs kernelagent installed, at the same version.

GPUs are Ray's to place: a verification task asks for 1/KERNELAGENT_SLOTS_PER_GPU of a GPU (so that many share one,
as with local slots) and runs pinned to the GPU Ray gave it. Where the driver's own node has GPUs in the cluster, the
driver's GPU work (timing, which needs a whole GPU, and preparing references) leases its GPU from Ray too
(gpu_leases.RayGpuLeases), so a timing never shares its GPU with a Ray task. A local cluster started here gets
num_gpus = the visible GPUs (after --gpus).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from kernelagent.errors import KernelAgentError, UsageError
from kernelagent.executors.base import Executor
from kernelagent.sandbox.slots import holding, slots_per_gpu, use_placer, visible_gpus

SHIP_LIMIT_BYTES = 256 * 1024**2
RETURN_FILE_LIMIT_BYTES = 16 * 1024**2  # larger work files (e.g. big outputs) stay on the worker's node


class RayTaskFailed(KernelAgentError):
    """A verification task could not run on Ray (worker or node lost, cluster gone): the run is resumable."""


class RayExecutor(Executor):
    kind = "ray"

    def __init__(self, address: str | None = None) -> None:
        self._ray = connect(address)
        self._verify_task = self._ray.remote(verify_in_worker)
        self._call_task = self._ray.remote(call_in_worker)
        self._bundles: dict[tuple, object] = {}
        self._lock = threading.Lock()
        if not str(address or "").startswith("ray://") and node_gpus(self._ray) > 0:
            from kernelagent.executors.gpu_leases import RayGpuLeases

            use_placer(RayGpuLeases(self._ray, slots_per_gpu()))  # the driver's timings take their GPU from Ray

    def submit(self, fn: Callable, args: tuple = (), kwargs: dict | None = None, *, device: str = "cpu") -> Future:
        return self._call_task.options(**resources(device, exclusive=True)).remote(fn, args, kwargs or {}).future()

    def submit_verify(  # noqa: ANN001 - the signature of verify_reference_candidate
        self, code, harness, workdir, *, timeout_s, tf32=False, rtol=None, atol=None
    ) -> Future:
        options = {"timeout_s": timeout_s, "tf32": tf32, "rtol": rtol, "atol": atol}
        return self._submit("reference", code, harness, Path(workdir), options)

    def submit_verify_test(self, code, harness, workdir, *, timeout_s) -> Future:  # noqa: ANN001
        return self._submit("test", code, harness, Path(workdir), {"timeout_s": timeout_s})

    def _submit(self, mode: str, code: str, harness: dict, workdir: Path, options: dict) -> Future:
        bundle = self._bundle(mode, harness)
        shared_workdir = None if bundle is not None else str(workdir.resolve())
        task = self._verify_task.options(**resources(harness["device"]))
        ref = task.remote(mode, code, harness, bundle, options, shared_workdir)
        outer: Future = Future()
        ref.future().add_done_callback(lambda done: _deliver(done, workdir, outer))
        return outer

    def _bundle(self, mode: str, harness: dict) -> object | None:
        """The harness files in the object store, put once per harness version; None: too big, use shared paths."""
        files = harness_files(mode, harness)
        key = (mode, tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))
        if sum(entry[2] for entry in key[1]) > SHIP_LIMIT_BYTES:
            return None
        with self._lock:
            if key not in self._bundles:
                self._bundles[key] = self._ray.put({p.name: p.read_bytes() for p in files})
            return self._bundles[key]


def connect(address: str | None):  # noqa: ANN201 - the ray module
    """Connect once per process. address: None (RAY_ADDRESS or a running local cluster, else a new one), "auto"
    (a running cluster), "ray://host:10001" (Ray Client), or "local" (always start one in this process)."""
    try:
        import ray
    except ImportError as err:
        raise UsageError("--executor ray needs Ray: pip install 'ray>=2.9' (or `pip install -e .[ray]`)") from err
    if ray.is_initialized():
        return ray
    # Ray reports usage to its vendor by default; a run must not reach hosts the user did not name.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        if address == "local" or (address is None and not _running_cluster()):
            _start_local(ray)
        else:
            ray.init(address=address or None, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise UsageError(f"cannot connect to Ray at {address or 'the default address'}: {err}") from err
    return ray


def _running_cluster() -> bool:
    """Whether ray.init() without an address would join a cluster (RAY_ADDRESS, or one started with `ray start`)."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    try:
        from ray._private.services import canonicalize_bootstrap_address  # private: may move between Ray versions

        return canonicalize_bootstrap_address(None) is not None
    except (ConnectionError, RuntimeError, ValueError):
        return False
    except Exception:  # noqa: BLE001 - unknown Ray internals: let ray.init() find or start the cluster itself
        return True


def _start_local(ray) -> None:  # noqa: ANN001 - the ray module
    """A cluster of this host alone, with exactly the GPUs this process may use (visible, after --gpus): Ray names
    them by their physical ids, because it reads CUDA_VISIBLE_DEVICES when it starts."""
    gpus = visible_gpus()
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
    try:
        ray.init(address="local", num_gpus=len(gpus), include_dashboard=False, log_to_driver=False)
    finally:
        if saved is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def node_gpus(ray) -> float:  # noqa: ANN001 - the ray module
    """GPUs the cluster has on the driver's own node (0 where the driver's host gives Ray none)."""
    here = ray.get_runtime_context().get_node_id()
    for node in ray.nodes():
        if node.get("NodeID") == here and node.get("Alive", True):
            return float(node.get("Resources", {}).get("GPU", 0))
    return 0.0


def resources(device: str, *, exclusive: bool = False) -> dict:
    """A verification shares its GPU with slots_per_gpu() - 1 others, as local slots do; exclusive work (timing,
    Executor.submit) gets a whole one."""
    if device != "cuda":
        return {"num_cpus": 1}
    return {"num_gpus": 1 if exclusive else 1 / slots_per_gpu(), "num_cpus": 1}


def harness_files(mode: str, harness: dict) -> list[Path]:
    if mode == "test":
        return [Path(harness["test_path"])]
    return sorted(p for p in Path(harness["dir"]).iterdir() if p.is_file())


def _deliver(done: Future, workdir: Path, outer: Future) -> None:
    """Runs on Ray's callback thread: write the returned work files, then hand the verdict over."""
    try:
        verdict, files = done.result()
        if files is not None:
            write_files(workdir, files)
        outer.set_result(verdict)
    except KernelAgentError as err:  # raised by the verification itself (Ray keeps the class): as if local
        outer.set_exception(err)
    except Exception as err:  # noqa: BLE001 - any failure belongs to the caller waiting on `outer`
        message = str(err).strip().splitlines()[-1:] or [type(err).__name__]
        outer.set_exception(RayTaskFailed(f"verification on Ray failed ({type(err).__name__}): {message[0][:300]}; "
                                          "the run is resumable once the cluster is back"))


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    for relative, data in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# --- what runs inside the Ray worker ---


def verify_in_worker(
    mode: str, code: str, harness: dict, bundle: dict | None, options: dict, shared_workdir: str | None
) -> tuple[dict, dict[str, bytes] | None]:
    from kernelagent.verify.test_mode import verify_test_candidate
    from kernelagent.verify.verifier import verify_reference_candidate

    verify = verify_reference_candidate if mode == "reference" else verify_test_candidate
    gpu = ray_gpu()
    _keep_few_judges(harness)
    with holding(gpu):  # Ray placed this task: the candidate and its judge run on Ray's GPU, not on a local slot
        if bundle is None:  # shared filesystem: the harness and the work folder are where the driver sees them
            verdict = verify(code, harness, Path(shared_workdir), **options)
            return _stamped(verdict, gpu), None
        with tempfile.TemporaryDirectory(prefix="kernelagent-ray-") as tmp:
            local = localise_harness(mode, harness, bundle, Path(tmp) / "harness")
            workdir = Path(tmp) / "work"
            verdict = verify(code, local, workdir, **options)
            return _stamped(verdict, gpu), read_files(workdir)


def ray_gpu() -> str | None:
    """The GPU Ray gave this task (its physical id on the node), None for a CPU task."""
    import ray

    ids = ray.get_gpu_ids()
    return str(ids[0]) if ids else None


# A worker process keeps judges for the last few references it verified (a suite brings many; each judge holds its
# reference's tensors on the GPU). Older ones are closed.
JUDGES_PER_WORKER = 4
_recent_references: list[str] = []


def _keep_few_judges(harness: dict) -> None:
    from kernelagent.verify.judge_client import judge_key
    from kernelagent.verify.verifier import release

    if harness.get("mode") != "reference":
        return
    key = judge_key(harness["judge"])
    if key in _recent_references:
        _recent_references.remove(key)
    _recent_references.append(key)
    while len(_recent_references) > JUDGES_PER_WORKER:
        stale = _recent_references.pop(0)
        release({"mode": "reference", "judge": _judge_configs.pop(stale)})
    _judge_configs[key] = harness["judge"]


_judge_configs: dict[str, dict] = {}


def localise_harness(mode: str, harness: dict, bundle: dict[str, bytes], folder: Path) -> dict:
    """The harness description rewritten to point at the shipped copies on this node."""
    write_files(folder, bundle)
    local = dict(harness)
    if mode == "test":
        local["test_path"] = str(folder / Path(harness["test_path"]).name)
    else:
        local["dir"] = str(folder)
    local["cache_dir"] = str(_triton_cache(harness.get("cache_dir")))
    return local


def _triton_cache(driver_cache: str | None) -> Path:
    """The driver's compile cache when this node sees it (one host), else a per-node one that outlives the task."""
    if driver_cache and Path(driver_cache).is_dir() and os.access(driver_cache, os.W_OK):
        return Path(driver_cache)
    path = Path(tempfile.gettempdir()) / "kernelagent-triton-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.stat().st_size <= RETURN_FILE_LIMIT_BYTES
    }


def _stamped(verdict: dict, gpu: str | None = None) -> dict:
    """Says where the verification ran: the worker's pid, Ray node and host, and the GPU Ray gave it."""
    import ray

    details = verdict.setdefault("details", {})
    details["executor"] = {
        "kind": "ray",
        "pid": os.getpid(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "ray_gpu": gpu,
    }
    return verdict


def call_in_worker(fn: Callable, args: tuple, kwargs: dict) -> object:
    return fn(*args, **kwargs)
