"""Child process: times the reference (eager and torch.compile) or candidates with CUDA events, L2 flushed.

    python -m kernelagent.bench.timing_runner WORKDIR

WORKDIR holds config.json and problem.py (reference) or the candidate files; the initial state and one input draw
are lent by the judge over stdin. The runner writes report.json after every candidate, so a crash or timeout loses
only the candidate in flight.
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kernelagent.verify.loading import build_model, report_writer, tensors_in

FLUSH_BYTES = 256 * 1024**2  # at least twice the L2 of current GPUs (H100 50 MB, H200 60 MB)
CRASH_EXIT = 3  # the CUDA context is unusable after this candidate: the parent restarts us for the rest


def main(workdir: str) -> int:
    work = Path(workdir)
    write = report_writer(work / "report.json")
    report: dict = {"phase": "start", "results": {}}
    write(report)
    config = json.loads((work / "config.json").read_text())
    import torch

    clock = HostClock() if config.get("clock") == "host" else CudaClock()
    if not clock.available():
        report["fatal"] = "timing needs a CUDA GPU; interpreter times are not speed"
        write(report)
        return 0
    report["gpu"] = clock.name()
    report["torch"] = torch.__version__
    from kernelagent.verify.candidate_runner import receive_lent

    init, inputs, _keep = receive_lent(clock.device)
    config["init"] = init
    if config["mode"] == "reference":
        try:
            report["reference"] = time_reference(work, config, inputs, clock)
        except Exception as err:  # noqa: BLE001 - the user's reference failed: say so rather than crash silently
            report["fatal"] = f"the reference failed while timed: {type(err).__name__}: {str(err)[:500]}"
        report["phase"] = "done"
        write(report)
        return 0
    return _time_all(work, config, inputs, clock, report, write)


# ----------------------------------------------------------------------------------------------------------------
# Clocks: CUDA events on the GPU; the host clock exists only so CPU tests can exercise the plumbing


class CudaClock:
    device = "cuda"
    kind = "cuda"

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self._flush: object = None

    def available(self) -> bool:
        return self.torch.cuda.is_available()

    def name(self) -> str:
        return self.torch.cuda.get_device_name(0)

    def sync(self) -> None:
        self.torch.cuda.synchronize()

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
        event = self.torch.cuda.Event
        starts = [event(enable_timing=True) for _ in range(n)]
        ends = [event(enable_timing=True) for _ in range(n)]
        for i in range(n):
            if flush:
                self.flush()  # outside the event pair: its time is never counted
            starts[i].record()
            fn()
            ends[i].record()
        self.sync()
        return [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)]


class HostClock:
    """Wall clock on the CPU: for tests of the child protocol only; the parent never reports these numbers."""

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
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return times


def bench(
    fn: Callable[[], object],
    clock: CudaClock | HostClock,
    *,
    warmup_ms: float = 25,
    rep_ms: float = 100,
    min_reps: int = 20,
    max_reps: int = 2000,
    abort_ms: float | None = None,
) -> dict:
    """do_bench's method: warm up, estimate, then time each repetition with events around fn alone; median."""
    fn()  # compile, autotune and allocator warm-up stay out of the numbers
    clock.sync()
    estimate = statistics.median(clock.time_each(fn, 3))
    if abort_ms is not None and estimate > abort_ms:
        return {"error": f"too slow: {estimate:.3f} ms a call, over the cap of {abort_ms:.3f} ms", "slow_ms": estimate}
    per_call = max(estimate, 1e-3)
    n_warmup = min(max_reps, max(1, int(warmup_ms / per_call)))
    n_reps = min(max_reps, max(min_reps, math.ceil(rep_ms / per_call)))
    clock.time_each(fn, n_warmup, flush=False)
    series = clock.time_each(fn, n_reps)
    times = sorted(series)
    half = len(series) // 2
    return {
        "ms": statistics.median(times),
        "p20_ms": _quantile(times, 0.2),
        "p80_ms": _quantile(times, 0.8),
        "min_ms": times[0],
        "reps": n_reps,
        "calls": 1 + 3 + n_warmup + n_reps,
        "clock": clock.kind,
        # > 1: later repetitions ran slower than earlier ones (clocks dropping under sustained load, say)
        "drift": statistics.median(series[half:]) / max(statistics.median(series[:half]), 1e-9),
    }


def _quantile(sorted_times: list[float], q: float) -> float:
    point = q * (len(sorted_times) - 1)
    low, high = math.floor(point), math.ceil(point)
    return sorted_times[low] + (sorted_times[high] - sorted_times[low]) * (point - low)


# ----------------------------------------------------------------------------------------------------------------
# Reference: eager and torch.compile, plus the bytes and FLOPs the roofline needs


def time_reference(work: Path, config: dict, inputs: list, clock: CudaClock | HostClock) -> dict:
    import torch

    from kernelagent.verify.loading import load_module

    problem = load_module(work / "problem.py", "kernelagent_reference")
    model = _build(problem.Model, work, config, clock.device)
    with torch.no_grad():
        outputs = model(*inputs)
        result = {"eager": bench(lambda: model(*inputs), clock, **_bench_options(config))}
        result.update(_traffic(model, inputs, outputs))
        if config.get("compile", True):
            result["compile"] = _time_compiled(model, inputs, clock, config)
    result["dtype"] = config.get("dtype") or _dtype_of(inputs, outputs)
    return result


def _time_compiled(model: object, inputs: list, clock: CudaClock | HostClock, config: dict) -> dict:
    import torch

    started = time.perf_counter()
    try:
        compiled = torch.compile(model)
        compiled(*inputs)  # compilation happens here, outside the timed region
        clock.sync()
        compile_s = time.perf_counter() - started
        return {**bench(lambda: compiled(*inputs), clock, **_bench_options(config)), "compile_s": round(compile_s, 2)}
    except Exception as err:  # noqa: BLE001 - any failure of torch.compile is reported, never fatal
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else ""
        return {"error": f"{type(err).__name__}: {first}"}


def _traffic(model: object, inputs: list, outputs: object) -> dict:
    """Fewest bytes a kernel must move (inputs, parameters and outputs, each once) and the FLOPs torch counts."""
    from torch.utils.flop_counter import FlopCounterMode

    state = list(model.state_dict().values())
    moved = _nbytes(inputs) + _nbytes(state) + _nbytes(outputs)
    with FlopCounterMode(display=False) as counter:
        model(*inputs)
    flops = int(counter.get_total_flops())
    source = "flop_counter"
    if flops == 0:  # elementwise and reductions: torch counts none; one op per input element is a lower bound
        flops = sum(t.numel() for t in tensors_in(inputs))
        source = "numel_lower_bound"
    return {"bytes": moved, "flops": flops, "flops_source": source}


def _nbytes(values: object) -> int:
    seen, total = set(), 0
    for t in tensors_in(values):
        key = (t.data_ptr(), t.numel(), t.dtype)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def _dtype_of(inputs: list, outputs: object) -> str:
    for t in tensors_in(inputs) + tensors_in(outputs):
        if t.is_floating_point():
            return str(t.dtype).removeprefix("torch.")
    return "float32"


# ----------------------------------------------------------------------------------------------------------------
# Candidates: each built from init.pt like the verifier builds it, timed, and checked for tricks while timed


def _time_all(work: Path, config: dict, inputs: list, clock: CudaClock | HostClock, report: dict, write) -> int:  # noqa: ANN001
    from kernelagent.verify.runtime_guard import LaunchCounter

    counter = LaunchCounter()
    counter.install()
    guarded = _guarded_functions(clock)
    abort_ms = config.get("abort_ms")
    watchdog = Watchdog(config.get("candidate_timeout_s", 300), report, write)
    for name in config["candidates"]:
        if name in report["results"]:
            continue
        report["in_flight"] = name
        write(report)
        watchdog.start(name)
        result, healthy = _time_one(work, name, config, inputs, clock, counter, abort_ms)
        watchdog.stop()
        tampered = [name for name, fn in _guarded_functions(clock).items() if guarded.get(name) is not fn]
        if tampered:
            result = {"error": "the candidate replaced harness or timing functions: " + ", ".join(tampered)}
            healthy = False
        report["results"][name] = result
        report.pop("in_flight")
        write(report)
        if not healthy:
            return CRASH_EXIT
        if abort_ms is None and config.get("abort_factor") and "ms" in result:
            abort_ms = config["abort_factor"] * result["ms"]  # the first candidate (the seed) sets the cap
    report["phase"] = "done"
    write(report)
    return 0


class Watchdog:
    """Ends the process if one candidate hangs (compile or kernel), so the parent restarts us for the rest."""

    def __init__(self, limit_s: float, report: dict, write: Callable[[dict], None]):
        import os
        import threading

        self._limit_s, self._report, self._write, self._exit = limit_s, report, write, os._exit
        self._current: tuple[str, float] | None = None
        threading.Thread(target=self._watch, daemon=True).start()

    def start(self, name: str) -> None:
        self._current = (name, time.monotonic())

    def stop(self) -> None:
        self._current = None

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            current = self._current
            if current and time.monotonic() - current[1] > self._limit_s:
                self._report["results"][current[0]] = {"error": f"not timed: took over {self._limit_s:.0f}s"}
                self._write(self._report)
                self._exit(CRASH_EXIT)


def _time_one(work, name, config, inputs, clock, counter, abort_ms) -> tuple[dict, bool]:  # noqa: ANN001
    import torch

    from kernelagent.verify.candidate_runner import describe_error
    from kernelagent.verify.loading import load_module
    from kernelagent.verify.runtime_guard import OpRecorder

    module_name = f"candidate_{Path(name).stem}"
    try:
        module = load_module(work / name, module_name)
        model = _build(getattr(module, "ModelNew"), work, config, clock.device)  # noqa: B009 - a missing entry is an error
        with torch.no_grad():
            result = _measure(model, inputs, clock, counter, config, abort_ms)
            if "ms" in result:
                result.update(_guard_ops(model, inputs, OpRecorder))
    except BaseException as err:  # noqa: BLE001 - whatever the candidate raises is its result, not our crash
        result = {"error": f"{type(err).__name__}: {describe_error(err, work / name)['message'][:500]}"}
    finally:
        sys.modules.pop(module_name, None)
    healthy = _still_healthy(clock)
    gc.collect()
    if clock.kind == "cuda" and healthy:
        torch.cuda.empty_cache()
    return result, healthy


def _measure(model, inputs, clock, counter, config, abort_ms) -> dict:  # noqa: ANN001
    before = counter.launches
    model(*inputs)
    clock.sync()
    per_call = counter.launches - before
    if per_call == 0:
        return {"error": "forward launched no Triton kernel"}
    before = counter.launches
    result = bench(lambda: model(*inputs), clock, abort_ms=abort_ms, **_bench_options(config))
    if "ms" in result and counter.launches - before != per_call * result["calls"]:
        # Every timed call must do the work: a forward that skips launches on repeats (cached outputs) is not timed.
        launched = counter.launches - before
        return {"error": f"forward launched {launched} kernels over {result['calls']} calls, not {per_call} per call"}
    result["launches_per_call"] = per_call
    if config.get("crosscheck") and "ms" in result and clock.kind == "cuda":
        result.update(_cudagraph(lambda: model(*inputs), config))
        # Same events, no flush between calls: separates cache effects from launch gaps and clock behaviour.
        back_to_back = sorted(clock.time_each(lambda: model(*inputs), result["reps"], flush=False))
        result["no_flush_ms"] = statistics.median(back_to_back)
    return result


def _cudagraph(fn: Callable[[], object], config: dict) -> dict:
    """Triton's own CUDA-graph timing of the same forward (no L2 flush, no launch gaps), as a cross-check."""
    try:
        from triton.testing import do_bench_cudagraph

        ms = do_bench_cudagraph(fn, rep=int(config.get("rep_ms", 100)), return_mode="median")
        return {"cudagraph_ms": float(ms)}
    except Exception as err:  # noqa: BLE001 - a forward that cannot be captured still has its event timing
        return {"cudagraph_error": f"{type(err).__name__}: {str(err)[:200]}"}


def _guard_ops(model, inputs, recorder_cls) -> dict:  # noqa: ANN001
    """One more call under the op recorder: a forward that turns to PyTorch compute after warm-up is not timed."""
    from kernelagent.verify.runtime_guard import GuardEvidence

    recorder = recorder_cls(GuardEvidence(lambda event: None))
    with recorder:
        model(*inputs)
    if recorder.evidence.compute_ops:
        ops = ", ".join(sorted(set(recorder.evidence.compute_ops))[:5])
        return {"error": f"PyTorch compute ran outside Triton while timed: {ops}"}
    return {}


def _still_healthy(clock: CudaClock | HostClock) -> bool:
    try:
        clock.sync()
        return True
    except Exception:  # noqa: BLE001 - an illegal address poisons the context: only a new process recovers
        return False


def _guarded_functions(clock: CudaClock | HostClock) -> dict[str, object]:
    """Identities a candidate must not replace while it is timed (checked after each candidate)."""
    import torch

    from kernelagent.verify.runtime_guard import protected_functions

    module = sys.modules[__name__]
    own = {f"timing_runner.{n}": getattr(module, n) for n in ("bench", "_measure", "_guard_ops", "_quantile")}
    return {
        **protected_functions(),
        **own,
        "time.perf_counter": time.perf_counter,
        "torch.cuda.Event.record": torch.cuda.Event.record,
        "torch.cuda.Event.elapsed_time": torch.cuda.Event.elapsed_time,
        "torch.cuda.synchronize": torch.cuda.synchronize,
        "torch.Tensor.zero_": torch.Tensor.zero_,
        f"{type(clock).__name__}.time_each": type(clock).time_each,
    }


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers


def _build(entry: type, work: Path, config: dict, device: str):  # noqa: ANN202
    """Same construction as the verifier (one shared function), from the state the judge lent."""
    return build_model(entry, config["init"], device, config.get("dtype"))


def _bench_options(config: dict) -> dict:
    return {k: config[k] for k in ("warmup_ms", "rep_ms", "min_reps", "max_reps") if k in config}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
