"""Several GPUs on CPU with fake device lists: --gpus N, the physical GPU in verdicts, a failing GPU retired while the
others carry on, and the multi-GPU benchmark script end to end in its tiny CPU mode."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

import pytest
from conftest import ROOT
from test_slots import cpu_harness

from kernelagent.sandbox import slots as slots_module
from kernelagent.sandbox.slots import GpuSlots, GpuUnavailable, gpu_facts, restrict_gpus, shared_slots

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

# Stands for a device that is gone: the reference cannot start where CUDA_VISIBLE_DEVICES names GPU "1".
GONE_ON_GPU_1 = "import os\nif os.environ.get('CUDA_VISIBLE_DEVICES') == '1':\n    raise RuntimeError('device gone')\n"
HONEST_ADD = ROOT / "tests" / "corpus" / "honest" / "elementwise_add__block1024.py"


@pytest.fixture
def two_fake_gpus(monkeypatch):
    monkeypatch.setenv("KERNELAGENT_GPUS", "0,1")
    monkeypatch.setenv("KERNELAGENT_SLOTS_PER_GPU", "2")
    slots_module._reset_shared_slots()
    yield shared_slots()
    slots_module._reset_shared_slots()


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An nvidia-smi on PATH that answers the two queries we make, for two H200s (the tool is not ours to test)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        '  -L) echo "GPU 0: NVIDIA H200 (UUID: GPU-aaaa0000)"; echo "GPU 1: NVIDIA H200 (UUID: GPU-bbbb1111)";;\n'
        '  *) echo "0, GPU-aaaa0000, NVIDIA H200, 00000000:18:00.0"; echo "1, GPU-bbbb1111, NVIDIA H200, '
        '00000000:2A:00.0";;\n'
        "esac\n"
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(slots_module, "_smi_rows", None)
    yield
    slots_module._smi_rows = None


def test_gpus_option_keeps_the_first_n_visible_gpus(monkeypatch):
    monkeypatch.setenv("KERNELAGENT_GPUS", "3,5,7")
    try:
        assert restrict_gpus(2) == ["3", "5"]
        assert shared_slots().devices == ("3", "5") and os.environ["KERNELAGENT_GPUS"] == "3,5"
        assert restrict_gpus(None) == ["3", "5"]  # None keeps what is visible now
    finally:
        slots_module._reset_shared_slots()


def test_physical_gpu_is_read_from_nvidia_smi_by_index_or_uuid(fake_nvidia_smi, monkeypatch):
    monkeypatch.delenv("KERNELAGENT_GPUS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert slots_module.visible_gpus() == ["0", "1"]
    assert gpu_facts("1") == {"gpu": "1", "gpu_index": "1", "gpu_uuid": "GPU-bbbb1111", "gpu_name": "NVIDIA H200"}
    assert gpu_facts("GPU-aaaa0000")["gpu_index"] == "0"
    assert gpu_facts("7") == {"gpu": "7"}  # unknown to nvidia-smi: the slot id alone
    assert gpu_facts(None) == {}


def test_a_gpu_failing_twice_in_a_row_is_retired_and_waiters_move_to_the_others():
    slots = GpuSlots(["0", "1"], per_gpu=1)
    assert not slots.device_failed("1", "judge could not start")
    slots.device_worked("1")  # a success between failures: not in a row
    assert not slots.device_failed("1", "judge could not start")
    release = threading.Event()
    got: list[str] = []

    def hold(event: threading.Event) -> None:
        with slots.acquire() as device:
            got.append(device)
            event.wait(10)

    first = threading.Thread(target=hold, args=(release,))
    first.start()  # takes "0"
    waiter_release = threading.Event()
    waiter = threading.Thread(target=hold, args=(waiter_release,))
    with slots.acquire() as busy:  # takes "1": the waiter below must queue
        assert busy == "1"
        waiter.start()
        assert slots.device_failed("1", "CUDA error: device not ready")  # the second in a row: retired
    release.set()
    first.join(5)
    waiter_release.set()
    waiter.join(5)
    assert got == ["0", "0"]  # the waiter got "0" once free, never the retired "1"
    assert slots.retired() == {"1": "CUDA error: device not ready"}
    slots.device_failed("0", "gone")
    slots.device_failed("0", "gone")
    with pytest.raises(GpuUnavailable, match="every GPU"), slots.acquire():
        pass


def test_a_candidate_whose_gpu_fails_is_judged_on_another_and_the_verdict_names_it(two_fake_gpus, tmp_path):
    """A reference that cannot start on GPU "1" stands for a device that is gone: the candidate placed there is
    judged on "0" instead, and after the second failure "1" takes no more runs."""
    from kernelagent.verify import verifier

    harness = cpu_harness(tmp_path, prelude=GONE_ON_GPU_1)
    harness = {**harness, "device": "cuda"}  # candidates take slots; the judge itself runs on the CPU
    code = HONEST_ADD.read_text()
    with _slot_held_elsewhere(two_fake_gpus):  # a verification on "0": the next run goes to the least-loaded "1"
        verdict = verifier.verify_reference_candidate(code, harness, tmp_path / "c1", timeout_s=180)
    # Judged on "0": the judge there ran the candidate, whose launch then found no GPU driver on this CPU machine.
    assert verdict["failure_class"] == "runtime_error" and "drivers" in verdict["reason"], verdict
    assert verdict["details"]["gpu"] == "0" and verdict["details"]["import_s"] is not None
    assert two_fake_gpus.retired() == {}  # one failure is not yet a pattern
    placements = [(p.device, p.exclusive) for p in two_fake_gpus.history()]
    assert placements == [("1", False), ("0", False), ("0", False)]  # tried on "1", judged on "0"; the holder
    # The judge follows the slot: one was started for "1" (and failed there), the one on "0" judged.
    judges = sorted(p.name.rsplit("-", 1)[-1] for p in (tmp_path / "harness" / "reference").glob("judge-*-gpu*"))
    assert judges == ["gpu0", "gpu1"]
    two_fake_gpus.device_failed("1", "judge could not start")
    assert set(two_fake_gpus.retired()) == {"1"}
    with two_fake_gpus.acquire() as other:  # with "0" busy, a run still never lands on the retired "1"
        assert other == "0"
        assert (
            verifier.verify_reference_candidate(code, harness, tmp_path / "c2", timeout_s=180)["details"]["gpu"] == "0"
        )
    verifier.release(harness)


# --------------------------------------------------------------------------- Ray on one host with (fake) GPUs


@pytest.fixture(scope="module")
def ray_with_two_fake_gpus():
    """A local Ray cluster started as `--executor ray` starts one: num_gpus = the visible GPUs, here two fake ids
    (Ray's GPUs are logical resources, so placement works without a device)."""
    ray = pytest.importorskip("ray")
    from kernelagent.executors.ray_executor import RayExecutor

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "KERNELAGENT_GPUS", "KERNELAGENT_SLOTS_PER_GPU")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    os.environ.update(KERNELAGENT_GPUS="0,1", KERNELAGENT_SLOTS_PER_GPU="2", RAY_USAGE_STATS_ENABLED="0")
    if ray.is_initialized():
        ray.shutdown()
    slots_module._reset_shared_slots()
    executor = RayExecutor("local")
    yield ray, executor
    ray.shutdown()
    slots_module._reset_shared_slots()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_ray_places_verifications_on_its_gpus_and_never_beside_a_timing_lease(ray_with_two_fake_gpus, tmp_path):
    from kernelagent.executors.gpu_leases import RayGpuLeases

    ray, executor = ray_with_two_fake_gpus
    assert ray.cluster_resources().get("GPU") == 2
    leases = shared_slots()
    assert isinstance(leases, RayGpuLeases)  # the driver's timings lease their GPU from Ray
    harness = {**cpu_harness(tmp_path), "device": "cuda"}  # tasks ask Ray for a GPU; the judge runs on the CPU
    code = HONEST_ADD.read_text()
    with leases.acquire(exclusive=True) as timed_on:  # a timing holds a whole GPU ...
        assert timed_on in ("0", "1")
        verdict = executor.submit_verify(code, harness, tmp_path / "c0", timeout_s=180).result(timeout=240)
    other = {"0": "1", "1": "0"}[timed_on]
    # ... so the verification ran on the other one, pinned to the GPU Ray gave it; the judge ran the candidate (whose
    # launch then found no GPU driver on this CPU machine).
    assert verdict["details"]["gpu"] == other == verdict["details"]["executor"]["ray_gpu"], verdict["details"]
    assert verdict["failure_class"] == "runtime_error" and verdict["details"]["import_s"] is not None
    assert (tmp_path / "c0" / "candidate.py").read_text() == code  # the work folder came back
    assert [(p.device, p.exclusive) for p in leases.history()] == [(timed_on, True)]


def test_a_timing_whose_gpu_fails_fails_only_its_candidates(two_fake_gpus, tmp_path):
    from kernelagent.bench import timing
    from kernelagent.verify import verifier

    harness = {**cpu_harness(tmp_path, prelude=GONE_ON_GPU_1), "device": "cuda"}
    with _slot_held_elsewhere(two_fake_gpus):  # a verification on "0": the timing takes "1", whose judge cannot start
        results = timing.time_candidates([HONEST_ADD.read_text()] * 2, harness, tmp_path / "timing", timeout_s=180)
    assert [r["error"].split(" (")[0] for r in results] == ["not timed: GPU 1 failed"] * 2, results
    assert two_fake_gpus.device_failed("1", "again")  # the timing's failure counted: a second one retires "1"
    verifier.release(harness)


@contextlib.contextmanager
def _slot_held_elsewhere(gpus: GpuSlots):  # noqa: ANN202
    """Another thread holds a shared slot (the least-loaded GPU, "0") for as long as the block runs."""
    release = threading.Event()
    got: list[str] = []

    def hold() -> None:
        with gpus.acquire() as device:
            got.append(device)
            release.wait(180)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        while not got:
            threading.Event().wait(0.01)
        yield got[0]
    finally:
        release.set()
        holder.join(10)
