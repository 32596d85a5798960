"""GPU slots on CPU with fake device lists: capacity, placement, exclusive timing slots, wiring into the children."""

from __future__ import annotations

import itertools
import os
import random
import sys
import textwrap
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from kernelagent.sandbox import SandboxResult, run_sandboxed, shared_pool
from kernelagent.sandbox import slots as slots_module
from kernelagent.sandbox.slots import GpuSlots, Placement, gpu_placement, pinned_env, shared_slots, visible_gpus

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox is Linux-only")

DEVICES = ["0", "1", "2"]
REPO_ROOT = Path(__file__).resolve().parents[1]
PRINT_DEVICE = "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'))"


def counter_slots(per_gpu: int = 2, devices: list[str] = DEVICES) -> GpuSlots:
    """Slots whose clock is a counter read under their lock: history intervals order exactly like the holdings."""
    return GpuSlots(devices, per_gpu, clock=itertools.count().__next__)


def max_overlap(placements: list[Placement]) -> int:
    """The most placements holding at once (an end at the same tick as a start is not an overlap)."""
    events = sorted([(p.start, 1) for p in placements] + [(p.end, -1) for p in placements], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def on(device: str, placements: list[Placement]) -> list[Placement]:
    return [p for p in placements if p.device == device]


def overlaps(a: Placement, b: Placement) -> bool:
    return a.start < b.end and b.start < a.end


def start_holder(slots: GpuSlots, exclusive: bool, release: threading.Event) -> tuple[threading.Thread, list[str]]:
    """A thread that takes a slot, reports its device, and holds it until release is set."""
    got: list[str] = []

    def hold() -> None:
        with slots.acquire(exclusive) as device:
            got.append(device)
            release.wait(60)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread, got


def wait_until(predicate, timeout_s: float = 5.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def fake_gpus(monkeypatch):
    """The process-wide slots on three fake GPUs with two slots each; forgotten again afterwards."""
    monkeypatch.setenv("KERNELAGENT_GPUS", ",".join(DEVICES))
    monkeypatch.setenv("KERNELAGENT_SLOTS_PER_GPU", "2")
    slots_module._reset_shared_slots()
    yield shared_slots()
    slots_module._reset_shared_slots()


# --------------------------------------------------------------------------- the slots themselves


def test_stress_never_more_than_per_gpu_shared_holders_and_exclusive_holders_are_alone():
    slots = counter_slots(per_gpu=2)
    rng = random.Random(5)
    live = dict.fromkeys(DEVICES, 0)
    seen_peak = dict.fromkeys(DEVICES, 0)
    lock = threading.Lock()
    violations: list[str] = []

    def worker(index: int) -> None:
        for round_no in range(6):
            exclusive = (index + round_no) % 8 == 0
            with slots.acquire(exclusive) as device:
                with lock:  # the holders' own view, next to the history's
                    live[device] += 1
                    seen_peak[device] = max(seen_peak[device], live[device])
                    if exclusive and live[device] != 1:
                        violations.append(device)
                time.sleep(rng.uniform(0.001, 0.01))
                with lock:
                    live[device] -= 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    history = slots.history()
    assert len(history) == 24 * 6
    assert {p.device for p in history} == set(DEVICES)  # every GPU used
    for device in DEVICES:
        placements = on(device, history)
        assert max_overlap([p for p in placements if not p.exclusive]) <= 2
        for held in (p for p in placements if p.exclusive):
            assert not any(overlaps(held, other) for other in placements if other is not held)
    assert any(p.exclusive for p in history) and not violations
    assert max(seen_peak.values()) == 2  # the capacity was actually used, not just respected
    assert slots.load() == {d: {"shared": 0, "reserved": False} for d in DEVICES}


def test_shared_requests_go_to_the_least_loaded_gpu_first_listed_on_ties():
    slots = counter_slots(per_gpu=2)
    with ExitStack() as stack:
        first = [stack.enter_context(slots.acquire()) for _ in range(3)]
        assert first == ["0", "1", "2"]
        assert stack.enter_context(slots.acquire()) == "0"
        assert stack.enter_context(slots.acquire()) == "1"
        assert slots.load()["2"]["shared"] == 1
        assert stack.enter_context(slots.acquire()) == "2"
    with ExitStack() as stack:
        a = stack.enter_context(ExitStack())
        assert a.enter_context(slots.acquire()) == "0"
        assert stack.enter_context(slots.acquire()) == "1"
        assert stack.enter_context(slots.acquire()) == "2"
        assert stack.enter_context(slots.acquire()) == "0"
        a.close()  # "0" drops back to one holder: "1" and "2" hold one too, so "0" is first again
        assert stack.enter_context(slots.acquire()) == "0"
        assert stack.enter_context(slots.acquire()) == "1"


def test_exclusive_holder_waits_for_shared_holders_blocks_newcomers_on_its_gpu_only_and_is_alone():
    slots = counter_slots(per_gpu=3, devices=["0", "1"])
    release_shared, release_exclusive, release_late = threading.Event(), threading.Event(), threading.Event()
    early = [start_holder(slots, False, release_shared) for _ in range(3)]  # "0", "1", "0"
    assert wait_until(lambda: all(got for _, got in early))
    assert sorted(got[0] for _, got in early) == ["0", "0", "1"]
    timing, timing_got = start_holder(slots, True, release_exclusive)
    assert wait_until(lambda: slots.load()["1"]["reserved"])  # the least-loaded GPU, reserved at once
    time.sleep(0.1)
    assert not timing_got  # still draining: one shared holder is on "1"
    late = [start_holder(slots, False, release_late) for _ in range(2)]
    assert wait_until(lambda: any(got for _, got in late))
    time.sleep(0.1)
    # "1" has free slots but is reserved: one newcomer takes the last slot on "0", the other waits.
    assert [got for _, got in late if got] == [["0"]]
    release_shared.set()  # the early holders leave: the exclusive holder gets "1" to itself
    assert wait_until(lambda: bool(timing_got) and all(got for _, got in late))
    assert timing_got == ["1"]
    assert sorted(got[0] for _, got in late) == ["0", "0"]  # nobody joined it on "1"
    release_late.set()
    release_exclusive.set()
    for thread, _ in [*early, *late, (timing, timing_got)]:
        thread.join(5)
    history = slots.history()
    held = next(p for p in history if p.exclusive)
    assert not any(overlaps(held, p) for p in on("1", history) if p is not held)
    assert held.waited_s >= 0.1


def test_exclusive_waiter_is_not_starved_by_a_stream_of_shared_requests():
    slots = counter_slots(per_gpu=2, devices=["0"])
    stop = threading.Event()

    def stream(seed: int) -> None:  # eight threads keep the only GPU busy with staggered, overlapping holdings
        rng = random.Random(seed)
        while not stop.is_set():
            with slots.acquire():
                time.sleep(rng.uniform(0.005, 0.03))

    streams = [threading.Thread(target=stream, args=(seed,)) for seed in range(8)]
    for thread in streams:
        thread.start()
    time.sleep(0.1)
    got: list[tuple[str, float, dict]] = []

    def timing_run() -> None:
        started = time.monotonic()
        with slots.acquire(exclusive=True) as device:
            got.append((device, time.monotonic() - started, slots.load()["0"]))

    timing = threading.Thread(target=timing_run)
    timing.start()
    timing.join(3)  # a starving waiter would never return while the stream runs: give up instead of hanging
    stop.set()
    for thread in [*streams, timing]:
        thread.join(5)
    assert got, "the exclusive request starved"
    device, waited, load = got[0]
    assert device == "0" and load == {"shared": 0, "reserved": True}
    assert waited < 1.0  # about one holding's length, not "whenever the stream pauses"
    history = slots.history()
    held = next(p for p in history if p.exclusive)
    assert any(p.start > held.end for p in history)  # the stream went on afterwards
    assert not any(overlaps(held, p) for p in history if p is not held)


def test_nested_placement_in_one_thread_reuses_the_slot_instead_of_deadlocking(fake_gpus):
    with gpu_placement("cuda") as outer, gpu_placement("cuda", exclusive=True) as inner:
        assert inner == outer == "0"
    assert [(p.device, p.exclusive) for p in fake_gpus.history()] == [("0", False)]


def test_device_lists_come_from_env_without_touching_cuda(monkeypatch):
    monkeypatch.setenv("KERNELAGENT_GPUS", "0,1,2,3")
    assert visible_gpus() == ["0", "1", "2", "3"]
    monkeypatch.setenv("KERNELAGENT_GPUS", "")
    assert visible_gpus() == []
    monkeypatch.delenv("KERNELAGENT_GPUS")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4, GPU-8c1a,-1,5")
    assert visible_gpus() == ["4", "GPU-8c1a"]  # CUDA stops at the first invalid entry
    monkeypatch.setenv("KERNELAGENT_GPUS", "2,3")
    monkeypatch.setenv("KERNELAGENT_SLOTS_PER_GPU", "3")
    slots_module._reset_shared_slots()
    try:
        slots = shared_slots()
        assert (slots.devices, slots.per_gpu) == (("2", "3"), 3)
        assert shared_slots(per_gpu=1) is slots
    finally:
        slots_module._reset_shared_slots()
    with pytest.raises(ValueError):
        GpuSlots(["0", "0"], 2)
    with pytest.raises(RuntimeError):
        with GpuSlots([], 2).acquire():
            pass


def test_cpu_runs_and_hosts_without_gpus_never_pin(monkeypatch):
    slots_module._reset_shared_slots()
    with gpu_placement("cpu") as gpu:
        assert gpu is None
    assert slots_module._shared is None  # a CPU run never even creates the slots
    monkeypatch.setenv("KERNELAGENT_GPUS", "")
    try:
        with gpu_placement("cuda") as gpu:
            assert gpu is None
    finally:
        slots_module._reset_shared_slots()
    assert pinned_env({"A": "1"}, None) == {"A": "1"}
    assert pinned_env({"A": "1"}, "2") == {"A": "1", "CUDA_VISIBLE_DEVICES": "2"}


# --------------------------------------------------------------------------- the children really get their GPU


def test_cold_and_warm_children_see_their_slot_in_cuda_visible_devices(fake_gpus, tmp_path):
    (tmp_path / "print_device.py").write_text(PRINT_DEVICE)
    pool = shared_pool(interpret=True)
    with fake_gpus.acquire() as first, fake_gpus.acquire() as second:
        assert (first, second) == ("0", "1")
        cold = run_sandboxed([sys.executable, "-c", PRINT_DEVICE], cwd=tmp_path, env=pinned_env({}, first))
        env = pinned_env({"TRITON_INTERPRET": "1"}, second)
        warm = pool.run_module("print_device", [], cwd=tmp_path, env=env)
    assert cold.stdout.strip() == "0", cold.tail()
    assert warm.stdout.strip() == "1", warm.tail()


class FakeRunner:
    """Stands in for the sandbox: records each child's env and what the slots looked like while it ran."""

    def __init__(self, slots: GpuSlots, write_report=None) -> None:  # noqa: ANN001
        self.slots, self.write_report, self.calls = slots, write_report, []

    def __call__(self, argv, *, cwd, limits, env, stdin_fd=None) -> SandboxResult:  # noqa: ANN001
        self.calls.append({"env": dict(env), "load": self.slots.load(), "limits": limits, "stdin_fd": stdin_fd})
        if self.write_report:
            self.write_report(Path(cwd))
        return SandboxResult(1, "", "fake child", False, 0.01, None, 0, True)


def test_verifier_pins_gpu_candidates_and_records_the_gpu_in_the_verdict(fake_gpus, tmp_path, monkeypatch):
    from kernelagent.verify import verifier

    fake = FakeRunner(fake_gpus)
    monkeypatch.setattr(verifier, "sandbox_runner", lambda harness: fake)
    # A real judge on the CPU (no GPU here), with the harness claiming the GPU so that candidates take slots.
    harness = {**cpu_harness(tmp_path), "device": "cuda"}
    history_before = len(fake_gpus.history())
    code = (REPO_ROOT / "tests" / "corpus" / "honest" / "elementwise_add__block1024.py").read_text()
    verdict = verifier.verify_reference_candidate(code, harness, tmp_path / "cand", timeout_s=5)
    assert verdict["details"]["gpu"] == "0"
    assert not verdict["passed"]  # the fake child said nothing to the judge: no draw judged, no pass
    assert fake.calls[0]["env"]["CUDA_VISIBLE_DEVICES"] == "0"
    assert fake.calls[0]["stdin_fd"] is not None  # the judge's socket
    assert fake.calls[0]["load"]["0"]["shared"] == 1  # held while the child ran ...
    assert fake_gpus.load()["0"]["shared"] == 0  # ... and released afterwards
    limits = fake.calls[0]["limits"]
    assert (limits.apply_memory_limit, limits.rss_bytes) == (False, verifier.host_memory_limit())
    verifier.verify_reference_candidate(code, {**harness, "device": "cpu"}, tmp_path / "cpu", timeout_s=5)
    assert fake.calls[1]["env"].get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")  # as it was
    assert len(fake_gpus.history()) == history_before + 1  # the CPU run took no slot


def cpu_harness(tmp_path: Path, prelude: str = "") -> dict:
    """The elementwise-add reference prepared on the CPU; `prelude` runs before it in the judge."""
    from kernelagent.verify import verifier

    return verifier.prepare_reference(
        reference_source=prelude + (REPO_ROOT / "tests" / "corpus" / "problems" / "elementwise_add.py").read_text(),
        harness_dir=tmp_path / "harness",
        device="cpu",
        draws=1,
        sizes={},
        precision="spec",
        timeout_s=60,
        cache_dir=tmp_path / "cache",
        extra_draws=False,
    )


def test_reference_and_test_mode_runs_take_a_shared_slot(fake_gpus, tmp_path, monkeypatch):
    from kernelagent.errors import ReferenceError_
    from kernelagent.verify import test_mode, verifier

    fake = FakeRunner(fake_gpus)
    monkeypatch.setattr(verifier, "runner_for", lambda *, warm: fake)
    with pytest.raises(ReferenceError_):  # the judge, pinned to fake GPU "0", finds no CUDA device
        verifier.prepare_reference(
            reference_source="",
            harness_dir=tmp_path / "h",
            device="cuda",
            draws=1,
            sizes={},
            precision="spec",
            seed=1,
            timeout_s=5,
            cache_dir=tmp_path / "cache",
        )
    assert list((tmp_path / "h" / "reference").glob("judge-*-gpu0"))  # the judge was started for GPU "0"
    test_mode.run_test("", "", tmp_path / "t", "cuda", 5, tmp_path / "cache")
    assert [call["env"]["CUDA_VISIBLE_DEVICES"] for call in fake.calls][-1:] == ["0"]
    assert [(p.device, p.exclusive) for p in fake_gpus.history()][:2] == [("0", False), ("0", False)]


def test_timing_children_get_a_gpu_to_themselves_and_results_name_it(fake_gpus, tmp_path):
    from kernelagent.bench import timing

    # A real timing child and judge, driven on CPU with the host clock (test-only), on fake GPUs.
    harness = {**cpu_harness(tmp_path), "device": "cuda", "_test_clock": "host"}
    code = (REPO_ROOT / "tests" / "corpus" / "honest" / "elementwise_add__block1024.py").read_text()
    release = threading.Event()
    holder, got = start_holder(fake_gpus, False, release)  # a verification already on "0"
    assert wait_until(lambda: bool(got))
    (result,) = timing.time_candidates([code], harness, tmp_path / "timing", timeout_s=60)
    release.set()
    holder.join(5)
    assert result["gpu_slot"] == "1" and "ms" in result, result  # the least-loaded free GPU, not "0"
    # One exclusive holding of "1" while the shared one on "0" was still held.
    assert [(p.device, p.exclusive) for p in fake_gpus.history()] == [("1", True), ("0", False)]


def test_timing_on_a_cpu_harness_takes_no_slot(fake_gpus, tmp_path):
    from kernelagent.bench import timing

    code = textwrap.dedent("class ModelNew: pass\n")
    assert timing.time_candidates([code], {"device": "cpu"}, tmp_path) == [dict(timing.SKIPPED)]
    assert fake_gpus.history() == []
