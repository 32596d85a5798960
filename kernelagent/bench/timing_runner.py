"""Child process, untrusted: builds the candidates (or the reference's baselines) and runs the timed calls the judge
asks for, with CUDA events and the L2 flushed.

    python -m kernelagent.bench.timing_runner WORKDIR      (stdin: the judge's socket)

WORKDIR holds config.json and the candidate files (or problem.py). The judge (verify/judge_timing.py) lends the
initial state and K input/output slots, refills a slot with a fresh draw before every checked call and compares the
outputs this process copies into the slot's buffers; the per-call times this process reports are checked against
the judge's own clock and the roofline there. This process is the candidate's: it decides nothing, and what it says
about itself (patched functions, threads, PyTorch compute) can only fail the candidate.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kernelagent.verify.loading import build_model

FLUSH_BYTES = 256 * 1024**2  # at least twice the L2 of current GPUs (H100 50 MB, H200 60 MB)
_perf = time.perf_counter  # bound before any candidate code loads: patching time.perf_counter later changes nothing
BASELINES = ("eager", "compile", "max-autotune")  # reference mode's "candidates"


def main(workdir: str) -> int:
    work = Path(workdir)
    config = json.loads((work / "config.json").read_text())
    import torch

    from kernelagent.verify import wire
    from kernelagent.verify.candidate_runner import Channel
    from kernelagent.verify.runtime_guard import LaunchCounter, task_ids

    clock = HostClock() if config.get("clock") == "host" else CudaClock()
    channel = Channel()
    keep: list = []  # shared mappings must outlive every tensor that views them
    init, fds = _next_with_fds(channel)
    state = {d["name"]: wire.map_tensor(d, fds, keep) for d in init["state"]}
    lent, fds = _next_with_fds(channel)
    slots = [Slot(entry, fds, keep) for entry in lent["slots"]]
    init = {"init_inputs": wire.unpack_object(init["init_inputs"]), "state_dict": state, "seed": init["config"]["seed"]}
    if not clock.available():
        for name in config["candidates"]:
            channel.report({"event": "candidate", "name": name, "error": "timing needs a CUDA GPU"})
        return 0
    set_tf32(torch, bool(config.get("tf32")))
    if clock.kind == "cuda":  # CUDA context, Triton's driver and the flush buffer exist before the thread baseline
        from kernelagent.verify.candidate_runner import _prepare_device

        _prepare_device({"device": "cuda"}, torch)
        clock.flush()
        clock.sync()
    counter = LaunchCounter()
    counter.install()
    watchdog = Watchdog(config.get("candidate_timeout_s", 300))
    baseline = task_ids()
    guarded = _guarded_functions(clock)
    reference = config["mode"] == "reference"
    if not reference:
        # The verifier's process rules hold here too (no processes, threads, ctypes, gc walks, frames of our files):
        # an outside attacker found gc.get_objects and os.fork refused while verified and allowed while timed.
        from kernelagent.verify.candidate_runner import _OWN_FILES
        from kernelagent.verify.runtime_guard import AuditGuard, GuardEvidence

        audit = AuditGuard(GuardEvidence(channel.report), _OWN_FILES | {str(Path(__file__).resolve())})
        audit.install()
        audit.armed = True
    models: dict[str, object] = {}
    for name in config["candidates"]:
        watchdog.start()
        model, error = _build_one(work, name, init, config, clock)
        watchdog.stop()
        message = {"event": "candidate", "name": name, **({"error": error} if error else {})}
        models[name] = model
        channel.report({**message, **({} if reference else _self_check(guarded, clock, baseline, task_ids))})
    first_calls: set[str] = set()
    while True:
        try:
            message, _fds = channel.next()
        except wire.WireError:
            return 0
        event = message.get("event")
        if event == "calls":
            name = message["name"]
            recorded = not reference and name not in first_calls  # the first call runs under the op recorder
            first_calls.add(name)
            watchdog.start()
            reply = run_calls(models[name], [slots[i] for i in message["slots"]], clock, counter, message, recorded)
            watchdog.stop()
            channel.report(reply)  # first, so that our own checks below are not in the judge's wall time
            if reply.get("restart"):
                return 0
            channel.report(
                {"event": "checked", **({} if reference else _self_check(guarded, clock, baseline, task_ids))}
            )
        elif event == "crosscheck":
            channel.report({"event": "crosscheck_done", **_cudagraph(models[message["name"]], slots[0], config)})
        else:  # "finish" or "restart": the judge has what it needs
            return 0


def _next_with_fds(channel) -> tuple[dict, list[int]]:  # noqa: ANN001
    """The judge's next message with every descriptor sent for it (more than 64 come ahead in "fds" messages)."""
    fds: list[int] = []
    while True:
        message, more = channel.next()
        fds += more
        if message.get("event") != "fds":
            return message, fds


# ----------------------------------------------------------------------------------------------------------------
# Slots: the judge's input tensors and output buffers, mapped once


class Slot:
    def __init__(self, entry: dict, fds: list[int], keep: list) -> None:
        from kernelagent.verify import wire
        from kernelagent.verify.candidate_runner import _lent_value

        self.inputs = [_lent_value(d, fds, keep) for d in entry["inputs"]]
        self.buffers = [wire.map_tensor(d, fds, keep) if "kind" in d else None for d in entry["outputs"]]


def store(result: object, buffers: list) -> None:
    """Copy a forward's outputs into the judge's buffers; anything that does not fit stays NaN and fails there."""
    from kernelagent.verify.candidate_runner import _fits, flatten_result

    leaves = flatten_result(result)
    if len(leaves) != len(buffers):
        return
    for leaf, buffer in zip(leaves, buffers, strict=True):
        if buffer is not None and _fits(leaf, buffer):
            buffer.copy_(leaf)


# ----------------------------------------------------------------------------------------------------------------
# Clocks: CUDA events on the GPU; the host clock exists only so CPU tests can exercise the protocol


class CudaClock:
    device = "cuda"
    kind = "cuda"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self._flush: object = None
        # Bound now, before candidate code can replace them on the class (which the tamper check would also see).
        self._event, self._sync = torch.cuda.Event, torch.cuda.synchronize
        self._record, self._elapsed = torch.cuda.Event.record, torch.cuda.Event.elapsed_time
        self._wait = torch.cuda.Event.synchronize

    def available(self) -> bool:
        return self.torch.cuda.is_available()

    def name(self) -> str:
        return self.torch.cuda.get_device_name(0)

    def sync(self) -> None:
        self._sync()

    def flush(self) -> None:
        """Leave L2 cold and clean before a repetition: every input comes from memory, no write-back is owed.

        zero_() alone (do_bench's flush) evicts L2 but fills it with dirty lines, whose write-back then lands in
        the timed kernel (about 17 us on an H100): a bias against read-mostly kernels such as reductions. Reading
        the buffer back afterwards settles that debt outside the timed region.
        """
        if self._flush is None:
            l2 = getattr(self.torch.cuda.get_device_properties(0), "L2_cache_size", 0)
            size = max(FLUSH_BYTES, 2 * l2)
            self._flush = self.torch.empty(size // 4, dtype=self.torch.int32, device="cuda")
        self._flush.zero_()
        self._flush.max()

    def time_each(self, fn: Callable[[], object], n: int, *, flush: bool = True) -> list[float]:
        starts = [self._event(enable_timing=True) for _ in range(n)]
        ends = [self._event(enable_timing=True) for _ in range(n)]
        for i in range(n):
            if flush:
                self.flush()  # outside the event pair: its time is never counted
            self._record(starts[i])
            fn()
            self._record(ends[i])
        self._sync()
        return [self._elapsed(s, e) for s, e in zip(starts, ends, strict=True)]

    def run_calls(
        self, calls: list[Callable[[], object]], stores: list[Callable[[object], None]] | None, *, flush: bool
    ) -> tuple[list[float], list[float]]:
        """Times each call with events. Flushed calls: the end mark is waited for, then a device-wide synchronise
        is timed (work left running shows there), then the outputs are copied out. Back to back (no flush): the
        copies are queued between one call's end mark and the next call's start, outside every event pair, and the
        synchronise is timed once, after the last call's end mark and before its copy."""
        starts = [self._event(enable_timing=True) for _ in calls]
        ends = [self._event(enable_timing=True) for _ in calls]
        after = []
        for k, call in enumerate(calls):
            if flush:
                self.flush()
            self._record(starts[k])
            out = call()
            self._record(ends[k])
            if flush or k == len(calls) - 1:  # back to back: once, before the last copy is queued
                after.append(self._after(ends[k]))
            if stores:
                stores[k](out)
        self._sync()
        return [self._elapsed(s, e) for s, e in zip(starts, ends, strict=True)], after

    def _after(self, end: object) -> float:
        self._wait(end)
        started = _perf()
        self._sync()
        return (_perf() - started) * 1e3


class HostClock:
    """Wall clock on the CPU: for tests of the protocol only; the agent never reports these numbers."""

    device = "cpu"
    kind = "host"

    def available(self) -> bool:
        return True

    def name(self) -> str:
        return "cpu (host clock, not a speed)"

    def sync(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def time_each(self, fn: Callable[[], object], n: int, *, flush: bool = True) -> list[float]:
        times = []
        for _ in range(n):
            t0 = _perf()
            fn()
            times.append((_perf() - t0) * 1e3)
        return times

    def run_calls(
        self, calls: list[Callable[[], object]], stores: list[Callable[[object], None]] | None, *, flush: bool
    ) -> tuple[list[float], list[float]]:
        del flush
        times = []
        for k, call in enumerate(calls):
            t0 = _perf()
            out = call()
            times.append((_perf() - t0) * 1e3)
            if stores:
                stores[k](out)
        return times, []


def run_calls(model, slots: list[Slot], clock, counter, message: dict, recorded: bool) -> dict:  # noqa: ANN001
    """One message of the judge's: the calls on these slots, timed; outputs copied into the slots' buffers."""
    import torch

    from kernelagent.verify.candidate_runner import describe_error

    launches: list[int] = []

    def counted(slot: Slot) -> Callable[[], object]:
        def call() -> object:
            before = counter.launches
            out = model(*slot.inputs)
            launches.append(counter.launches - before)
            return out

        return call

    calls = [counted(slot) for slot in slots]
    stores = [(lambda out, s=slot: store(out, s.buffers)) for slot in slots] if message.get("store") else None
    ops: list[str] = []
    try:
        with torch.no_grad():
            if recorded:  # the first call (compile; never counted by the judge) also shows PyTorch compute
                (times, after), ops = _recorded(lambda: clock.run_calls(calls, stores, flush=message["flush"]))
            else:
                times, after = clock.run_calls(calls, stores, flush=message["flush"])
    except BaseException as err:  # noqa: BLE001 - whatever the candidate raises is its result, not our crash
        healthy = _still_healthy(clock)
        text = f"{type(err).__name__}: {describe_error(err, Path('candidate.py'))['message'][:500]}"
        return {"event": "calls_done", "error": text, "restart": not healthy}
    return {
        "event": "calls_done",
        "ms": times,
        "after_ms": after,
        "launches": launches,
        **({"compute_ops": ops} if ops else {}),
    }


def _recorded(run: Callable[[], object]) -> tuple[object, list[str]]:
    """The calls under the op recorder: a forward that computes with PyTorch outside Triton is not timed."""
    from kernelagent.verify.runtime_guard import GuardEvidence, OpRecorder

    recorder = OpRecorder(GuardEvidence(lambda event: None))
    with recorder:
        result = run()
    return result, sorted(set(recorder.evidence.compute_ops))[:5]


# ----------------------------------------------------------------------------------------------------------------
# do_bench's method, for the ceilings (roofline.py) and anything else timed in-process


def bench(
    fn: Callable[[], object],
    clock: CudaClock | HostClock,
    *,
    warmup_ms: float = 25,
    rep_ms: float = 100,
    min_reps: int = 20,
    max_reps: int = 2000,
) -> dict:
    """Warm up, estimate, then time each repetition with events around fn alone, L2 flushed; median."""
    fn()  # compile, autotune and allocator warm-up stay out of the numbers
    clock.sync()
    per_call = max(statistics.median(clock.time_each(fn, 3)), 1e-3)
    n_warmup = min(max_reps, max(1, int(warmup_ms / per_call)))
    n_reps = min(max_reps, max(min_reps, math.ceil(rep_ms / per_call)))
    clock.time_each(fn, n_warmup, flush=False)
    times = sorted(clock.time_each(fn, n_reps))
    return {
        "ms": statistics.median(times),
        "p20_ms": quantile(times, 0.2),
        "p80_ms": quantile(times, 0.8),
        "reps": n_reps,
        "clock": clock.kind,
    }


def quantile(sorted_times: list[float], q: float) -> float:
    point = q * (len(sorted_times) - 1)
    low, high = math.floor(point), math.ceil(point)
    return sorted_times[low] + (sorted_times[high] - sorted_times[low]) * (point - low)


def set_tf32(torch, allow: bool) -> None:  # noqa: ANN001
    """One TF32 setting for the reference's baselines and the candidates (Triton's tl.dot chooses its own)."""
    torch.backends.cuda.matmul.allow_tf32 = allow
    torch.backends.cudnn.allow_tf32 = allow
    torch.set_float32_matmul_precision("high" if allow else "highest")


# ----------------------------------------------------------------------------------------------------------------
# Building: candidates like the verifier builds them; the reference's baselines from problem.py


def _build_one(work: Path, name: str, init: dict, config: dict, clock) -> tuple[object, str | None]:  # noqa: ANN001
    from kernelagent.verify.candidate_runner import describe_error
    from kernelagent.verify.loading import load_module

    try:
        if config["mode"] == "reference":
            problem = load_module(work / "problem.py", "kernelagent_reference")
            model = build_model(problem.Model, init, clock.device, config.get("dtype"))
            if name != "eager":
                import torch

                model = torch.compile(model, **({"mode": "max-autotune"} if name == "max-autotune" else {}))
            return model, None
        module = load_module(work / name, f"candidate_{Path(name).stem}")
        return build_model(getattr(module, "ModelNew"), init, clock.device, config.get("dtype")), None  # noqa: B009
    except BaseException as err:  # noqa: BLE001 - whatever the candidate raises is its result, not our crash
        return None, f"{type(err).__name__}: {describe_error(err, work / name)['message'][:500]}"


class Watchdog:
    """Ends the process if one step hangs (compile or kernel); the judge names the candidate in flight."""

    def __init__(self, limit_s: float) -> None:
        import os
        import threading

        self._limit_s, self._exit = limit_s, os._exit
        self._since: float | None = None
        threading.Thread(target=self._watch, daemon=True).start()

    def start(self) -> None:
        self._since = time.monotonic()

    def stop(self) -> None:
        self._since = None

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            since = self._since
            if since is not None and time.monotonic() - since > self._limit_s:
                self._exit(3)


def _cudagraph(model, slot: Slot, config: dict) -> dict:  # noqa: ANN001
    """Triton's own CUDA-graph timing of the same forward (no L2 flush, no launch gaps), as a cross-check. Unlike
    the event timings it is not checked call by call: the judge only bounds it by the floor."""
    try:
        import torch
        from triton.testing import do_bench_cudagraph

        with torch.no_grad():
            ms = do_bench_cudagraph(
                lambda: model(*slot.inputs), rep=int(config.get("rep_ms", 100)), return_mode="median"
            )
        return {"cudagraph_ms": float(ms)}
    except Exception as err:  # noqa: BLE001 - a forward that cannot be captured still has its event timing
        return {"cudagraph_error": f"{type(err).__name__}: {str(err)[:200]}"}


# ----------------------------------------------------------------------------------------------------------------
# What the child says about itself (best effort: it can only fail the candidate)


def _self_check(guarded: dict, clock, baseline: set[int], task_ids) -> dict:  # noqa: ANN001
    return {"tampered": tampered(guarded, clock), "new_threads": len(task_ids() - baseline)}


def tampered(guarded: dict, clock) -> list[str]:  # noqa: ANN001
    now = _guarded_functions(clock)
    return [name for name, fn in now.items() if guarded.get(name) is not fn]


def _still_healthy(clock: CudaClock | HostClock) -> bool:
    try:
        clock.sync()
        return True
    except Exception:  # noqa: BLE001 - an illegal address poisons the context: only a new process recovers
        return False


def _guarded_functions(clock: CudaClock | HostClock) -> dict[str, object]:
    """Identities a candidate must not replace (checked after each build and each message)."""
    import torch

    from kernelagent.verify.runtime_guard import protected_functions

    module = sys.modules[__name__]
    own = {f"timing_runner.{n}": getattr(module, n) for n in ("run_calls", "store", "tampered", "_self_check")}
    return {
        **protected_functions(),
        **own,
        "time.perf_counter": time.perf_counter,
        "torch.cuda.Event.record": torch.cuda.Event.record,
        "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
        "torch.cuda.synchronize": torch.cuda.synchronize,
        "torch.Tensor.zero_": torch.Tensor.zero_,
        "torch.Tensor.copy_": torch.Tensor.copy_,
        f"{type(clock).__name__}.run_calls": type(clock).run_calls,
        f"{type(clock).__name__}.flush": type(clock).flush,
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
