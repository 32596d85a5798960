"""The judge's timing session ("kind": "time"): every timed call runs on inputs drawn fresh for it, and its outputs
are compared here; the judge's own clock and the roofline bound what the candidate's process may claim.

The timing child (bench/timing_runner.py) is the candidate's process: it can patch anything in it, so nothing it
says is believed beyond what this process can check. The judge lends K slots (inputs and output buffers, shared
memory, once). Before each checked call it writes a fresh draw into the slot in place and fills the output buffers
with NaN; after the call it compares the buffers with the reference's outputs for that draw (compare_outputs, the
verifier's comparison). A pointer or content cache never sees the same inputs twice and a forward that skips work
leaves wrong outputs. The child answers each message with its per-call event times; the judge keeps its own wall
time of every message, and rejects claims that its clock cannot account for (timing_inconsistent), medians below
the physical floor (below_physical_floor), work still running after a call, and threads the candidate left alive.
docs/timing.md says why each bound is what it is.
"""

from __future__ import annotations

import math
import secrets
import statistics
import time
from dataclasses import dataclass, field

import torch

from kernelagent.bench.timing_runner import quantile
from kernelagent.verify import wire
from kernelagent.verify.compare import compare_outputs, flatten_outputs
from kernelagent.verify.reference import Draw

SLOT_BUDGET_BYTES = {"cuda": 4 << 30, "cpu": 256 << 20}  # all slots' inputs and outputs together
MIN_SLOTS, MAX_SLOTS = 2, 8
BATCHES = 3  # back-to-back batches of K calls per candidate, for the host-clock cross-check and no_flush_ms
MAX_WARMUP_CALLS = 200  # unchecked, on slots already used: only to settle clocks and caches
WARMUP_PER_MESSAGE = 50
# What the judge's wall clock may hold beyond the claimed device time of a message's calls: a socket round trip and
# scheduling per message, and per call our harness's own Python (events, copying the outputs out, a device-wide
# synchronise), the forward's launch overhead (per launch, capped so a candidate cannot buy allowance by claiming
# launches), and the output copy at the measured copy bandwidth. Set from the harness's steps (not yet measured on a
# GPU: benchmarks/timing_attacks.py prints each honest kernel's host_check); docs/timing.md says what they imply.
MESSAGE_ALLOWANCE_MS = {"cuda": 0.5, "host": 2.0}
CALL_ALLOWANCE_MS = {"cuda": 0.15, "host": 0.3}
LAUNCH_ALLOWANCE_MS = {"cuda": 0.03, "host": 0.05}
MAX_ALLOWED_LAUNCHES = 32
COPY_GBPS_FLOOR = {"cuda": 200.0, "host": 0.5}  # the output copy's bandwidth when no ceiling was measured
# Plus this fraction of the claimed time: none on the GPU (events and the judge's clock see the same intervals), half
# on the host clock, whose test machines are often loaded (preemption between calls grows with the calls' length).
RELATIVE_ALLOWANCE = {"cuda": 0.0, "host": 0.5}
# The per-call and per-launch allowances stretch with the machine's load: the judge runs our harness's own per-call
# steps (a trivial call, the output copy) in its own process and compares with their time on an idle machine. At
# most MAX_LOAD_FACTOR: a candidate that loads the host to buy allowance buys at most that much.
IDLE_HARNESS_MS = {"cuda": 0.05, "host": 0.1}
MAX_LOAD_FACTOR = 10.0
# Work still running after the end event: the device-wide synchronise that follows it must be quick (a few us on
# an idle device; the median over every flushed call is taken, so a driver hiccup does not count).
AFTER_LIMIT_MS, AFTER_LIMIT_FRACTION = 0.03, 0.25
# A median below this fraction of the roofline floor is a measurement cheat. Below 1.0 because the floor uses the
# measured copy bandwidth (reads and writes mixed), which read-mostly kernels beat by up to ~10-15% on HBM, and
# medians jitter by a few percent; the cheats seen were 7-25x below.
FLOOR_MARGIN = 0.8
TAMPER, MISMATCH, INCONSISTENT, FLOOR, THREADS, SKIPPED_WORK = (
    "tamper",
    "numerical_mismatch",
    "timing_inconsistent",
    "below_physical_floor",
    "threads",
    "skipped_work",
)


@dataclass
class Slot:
    inputs: list  # the judge's shared tensors (numbers stay as they were lent)
    buffers: list  # one judge-owned buffer per tensor output; None for a Python output (not compared)
    expected: list | None = None  # the reference's outputs for the current contents; None once used unchecked
    expected_high: list | None = None  # the float64 reference's, where it fits: the verifier's comparison


@dataclass
class Record:
    """What the judge measured and checked for one candidate."""

    name: str
    samples: list[float] = field(default_factory=list)  # flushed, checked messages' mean call time, in time order
    rounds: list[list[float]] = field(default_factory=list)
    batch: list[float] = field(default_factory=list)  # back-to-back checked calls
    # per checked message: (the judge's wall ms, calls, flushed, claimed ms in all, launches per call)
    walls: list[tuple[float, int, bool, float, int]] = field(default_factory=list)
    after: list[float] = field(default_factory=list)
    launches: int = 0
    estimate: float = 0.0
    checked: int = 0
    last_wall_ms: float = 0.0
    extra: dict = field(default_factory=dict)


class Rejected(Exception):
    def __init__(self, kind: str, message: str, evidence: dict | None = None) -> None:
        super().__init__(message)
        self.kind, self.evidence = kind, evidence or {}


class EndSession(Exception):
    """The child must restart (tamper, threads, a broken context) or is gone; the candidate in flight is named."""


class TimingSession:
    def __init__(self, session) -> None:  # noqa: ANN001 - judge.Session (its wire helpers)
        self.session = session
        self.reference = session.reference
        self.options = session.options
        self.outcome = session.outcome
        self.results: dict[str, dict] = self.outcome.setdefault("results", {})
        self.clock = "host" if self.options.get("clock") == "host" else "cuda"
        self.bench = self.options.get("bench", {})
        self.rng = secrets.SystemRandom()

    # -- the session

    def run(self) -> None:
        self.session._send_init()
        self.slots = self._lend_slots()
        self.outcome["slots"] = len(self.slots)
        self.flush_ms = self._own_flush_ms()
        self.outcome["own_flush_ms"] = self.flush_ms
        self._measure_load()
        self.outcome["traffic"] = {k: v for k, v in self.traffic.items() if k != "draw_bytes"}
        self.outcome["gpu"] = torch.cuda.get_device_name(0) if self.clock == "cuda" else "cpu (host clock, not a speed)"
        self.outcome["torch"] = torch.__version__
        records: dict[str, Record] = {}
        try:
            for name in [str(n) for n in self.options.get("candidates", [])]:
                self._attempt(name, lambda n=name: self._built(n, records))
            self._measure(records)
            self.outcome["phase"] = "done"
            wire.send(self.session.sock, {"event": "finish"})
        except EndSession:
            wire.send(self.session.sock, {"event": "restart"})

    def _built(self, name: str, records: dict[str, Record]) -> None:
        built = self._receive("candidate", self.options.get("candidate_timeout_s", 180))
        if built.get("name") != name:
            raise Rejected(TAMPER, f"the timing child announced {str(built.get('name'))[:60]!r} for {name!r}")
        self._child_problems(built)
        if built.get("error"):
            raise CandidateError(str(built["error"]), restart=bool(built.get("restart")))
        records[name] = Record(name)

    def _measure(self, records: dict[str, Record]) -> None:
        live = list(records)
        first_estimate = None
        for name in list(live):
            if not self._attempt(name, lambda n=name: self._prepare(records[n])):
                live.remove(name)
                continue
            first_estimate = first_estimate or records[name].estimate
            cap = self.options.get("abort_ms") or (
                (self.options.get("abort_factor") or 0) * first_estimate if self.options.get("abort_factor") else None
            )
            if cap and records[name].estimate > cap:
                estimate = records[name].estimate
                self.results[name] = {
                    "error": f"too slow: {estimate:.3f} ms a call, over the cap of {cap:.3f} ms",
                    "slow_ms": estimate,
                }
                live.remove(name)
        rounds = max(1, int(self.options.get("rounds", 1)))
        for _ in range(rounds):
            order = list(live)
            if rounds > 1:
                self.rng.shuffle(order)  # interleaved: drift and neighbours' effects spread over every candidate
            for name in order:
                if name in live and not self._attempt(name, lambda n=name: self._timed_round(records[n], rounds)):
                    live.remove(name)
        for name in list(live):
            if self._attempt(name, lambda n=name: self._batches(records[n])):
                self._attempt(name, lambda n=name: self._finish(records[n]))

    def _attempt(self, name: str, step) -> bool:  # noqa: ANN001
        """Runs one step for a candidate; a rejection or an error is its result (the others go on). If the child
        dies meanwhile, "in_flight" names the candidate it died with."""
        self.outcome["in_flight"] = name
        try:
            step()
        except Rejected as err:
            self._fail(name, err.kind, str(err), err.evidence)
            self.outcome.pop("in_flight", None)
            if err.kind in (TAMPER, THREADS):
                raise EndSession from err  # the process is not clean for the candidates after it
            return False
        except CandidateError as err:
            self.results[name] = {"error": str(err)[:800]}
            self.outcome.pop("in_flight", None)
            if err.restart:
                raise EndSession from err
            return False
        self.outcome.pop("in_flight", None)
        return True

    def _fail(self, name: str, kind: str, message: str, evidence: dict | None = None) -> None:
        self.results[name] = {"error": f"{kind}: {message}", "rejected": kind, "evidence": evidence or {}}

    # -- the steps for one candidate

    def _prepare(self, record: Record) -> None:
        """The first call (compile, autotune: not timed), then three flushed calls for an estimate."""
        self._calls(record, [0], flush=False, checked=True, timeout=self.options.get("candidate_timeout_s", 180))
        record.extra["first_call_s"] = round(record.last_wall_ms / 1e3, 3)
        record.walls.clear()
        claims = self._calls(record, self._fresh_order(3), flush=True, checked=True)
        record.estimate = statistics.median(claims)
        record.samples.clear()
        per_call = max(record.estimate, 1e-3)
        warmup = min(MAX_WARMUP_CALLS, max(1, int(self.bench.get("warmup_ms", 25) / per_call)))
        while warmup > 0:
            n = min(warmup, WARMUP_PER_MESSAGE)
            self._calls(record, [i % len(self.slots) for i in range(n)], flush=False, checked=False)
            warmup -= n

    def _timed_round(self, record: Record, rounds: int) -> None:
        per_call = max(record.estimate, 1e-3)
        total = math.ceil(self.bench.get("rep_ms", 100) / per_call)
        total = min(self.bench.get("max_reps", 1000), max(self.bench.get("min_reps", 20), total))
        left = max(3, math.ceil(total / rounds))
        start = len(record.samples)
        while left > 0:
            n = min(left, len(self.slots))
            self._calls(record, self._fresh_order(n), flush=True, checked=True)
            left -= n
        record.rounds.append(record.samples[start:])

    def _batches(self, record: Record) -> None:
        """Back to back, no flush, distinct fresh slots: the judge's wall time bounds what these calls cost."""
        for _ in range(self.bench.get("batches", BATCHES)):
            self._calls(record, self._fresh_order(len(self.slots)), flush=False, checked=True, batch=True)

    def _fresh_order(self, n: int) -> list[int]:
        order = list(range(len(self.slots)))
        self.rng.shuffle(order)
        return order[:n]

    def _calls(
        self,
        record: Record,
        slots: list[int],
        *,
        flush: bool,
        checked: bool,
        batch: bool = False,
        timeout: float | None = None,
    ) -> list[float]:
        for index in slots:
            if checked:
                self._refresh(self.slots[index])
            else:
                self.slots[index].expected = None
        if self.reference.device == "cuda":
            torch.cuda.synchronize()  # nothing of ours runs on the device while the candidate is timed
        message = {"event": "calls", "name": record.name, "slots": slots, "flush": flush, "store": checked}
        started = time.perf_counter()
        wire.send(self.session.sock, message)
        # A message's deadline grows with its calls: a kernel of seconds a call times a slot-full of them.
        expected_s = len(slots) * 4 * record.estimate / 1e3
        done = self._receive("calls_done", timeout or max(self.options.get("call_timeout_s", 120), expected_s + 30))
        wall_ms = (time.perf_counter() - started) * 1e3
        record.last_wall_ms = wall_ms
        if done.get("error") and done.get("restart"):
            raise CandidateError(str(done["error"]), restart=True)  # the child exits: nothing more comes
        self_report = self._receive("checked", self.options.get("call_timeout_s", 120))
        self._child_problems(done)  # first: a forward that failed on a refused act is a tamper, not a plain error
        self._child_problems(self_report)
        if done.get("error"):
            raise CandidateError(str(done["error"]))
        claims = _claims(done.get("ms"), len(slots))
        launches = _claims(done.get("launches"), len(slots))
        if claims is None or launches is None:
            raise Rejected(TAMPER, "the timing child's answer is malformed", {"answer": str(done)[:300]})
        if checked:
            for position, index in enumerate(slots):
                self._check(record, self.slots[index], position)
        if self.options.get("require_launches", True) and not all(n > 0 for n in launches):
            raise Rejected(SKIPPED_WORK, f"forward launched no Triton kernel in a timed call (launches: {launches})")
        record.launches = max(record.launches, int(max(launches)))
        after = _claims(done.get("after_ms"), None) or []
        if checked:
            record.walls.append((wall_ms, len(slots), flush, sum(claims), int(statistics.median(launches))))
            record.after += after
            # One figure per message, its calls' mean: the judge's clock bounds a message's sum, never how the child
            # spreads it over the calls (an outside attacker kept the sum and piled it onto one call, or did every
            # call's work in the first, and a median over calls fell 5-300x).
            (record.batch if batch else record.samples).append(sum(claims) / len(claims))
        return claims

    # -- checks

    def _check(self, record: Record, slot: Slot, position: int) -> None:
        got = [b if b is not None else e for b, e in zip(slot.buffers, slot.expected, strict=True)]
        high = slot.expected_high
        comparison = compare_outputs(  # exactly as verification compares (judge._judge_draw)
            got,
            high if high is not None else slot.expected,
            slot.expected if high is not None else None,
            tf32=self.options.get("tf32", False),
            rtol=self.options.get("rtol"),
            atol=self.options.get("atol"),
        )
        record.checked += 1
        if not comparison.ok:
            raise Rejected(
                MISMATCH,
                f"a timed call's outputs are not the outputs of its inputs (checked call {record.checked}, "
                f"call {position} of its message): {comparison.message}",
                {
                    "comparison": comparison.message,
                    "detail": str(comparison.evidence)[:800],
                    "checked_calls": record.checked,
                },
            )

    def _finish(self, record: Record) -> None:
        self._measure_load()
        samples = sorted(record.samples)
        ms = statistics.median(samples)
        half = len(record.samples) // 2
        result = {
            "ms": ms,
            "p20_ms": quantile(samples, 0.2),
            "p80_ms": quantile(samples, 0.8),
            "min_ms": samples[0],
            "reps": sum(n for _, n, flush, _, _ in record.walls if flush),
            "messages": len(samples),
            "samples_ms": [round(x, 6) for x in record.samples],
            "rounds_ms": [statistics.median(r) for r in record.rounds],
            "no_flush_ms": statistics.median(record.batch),
            "checked_calls": record.checked,
            "launches_per_call": record.launches,
            "clock": self.clock,
            "drift": (
                statistics.median(record.samples[half:]) / max(statistics.median(record.samples[:half]), 1e-9)
                if half
                else 1.0
            ),
            **record.extra,
        }
        result |= self._host_clock(record)
        self._work_after(record, ms)
        result |= self._floor(ms) or {}
        if self.options.get("crosscheck"):
            result |= (self._crosscheck(record.name, result.get("floor_ms")) if self.clock == "cuda"
                       else {"cudagraph_error": "not measured: CUDA graphs need the CUDA clock"})
        self.results[record.name] = result

    def _crosscheck(self, name: str, floor_ms: float | None) -> dict:
        """do_bench_cudagraph's figure from the child: not checked call by call, so only kept above the floor."""
        wire.send(self.session.sock, {"event": "crosscheck", "name": name})
        done = self._receive("crosscheck_done", self.options.get("call_timeout_s", 120))
        value = done.get("cudagraph_ms")
        if type(value) in (int, float) and math.isfinite(value) and value > 0:
            if floor_ms and value < FLOOR_MARGIN * floor_ms:
                return {"cudagraph_error": f"{value:.5f} ms is below the physical floor ({floor_ms:.5f} ms)"}
            return {"cudagraph_ms": float(value)}
        return {"cudagraph_error": str(done.get("cudagraph_error", "no figure"))[:300]}

    def _host_clock(self, record: Record) -> dict:
        """The judge's wall time of each checked message must be explained by the claimed times plus the allowances;
        when it is not for most messages (the median message), the claims are timing_inconsistent, with both
        figures. The median, not the sum: a cheat must lie in most calls to move a median, while a scheduling delay
        of the judge or the child (a loaded machine) lands in a few messages."""
        excess = []
        for wall, n, flush, claimed, launches in record.walls:
            unexplained = wall - (n * self.flush_ms if flush else 0.0) - claimed
            excess.append(unexplained - self._allowance(n, launches) - RELATIVE_ALLOWANCE[self.clock] * claimed)
        calls = sum(n for _, n, _, _, _ in record.walls)
        wall = sum(w for w, _, _, _, _ in record.walls)
        claimed = sum(c for _, _, _, c, _ in record.walls)
        allowed = sum(self._allowance(n, launches) for _, n, _, _, launches in record.walls)
        allowed += RELATIVE_ALLOWANCE[self.clock] * claimed
        evidence = {
            "judge_wall_ms_per_call": round(wall / calls, 6),
            "claimed_ms_per_call": round(claimed / calls, 6),
            "flush_ms_per_flushed_call": round(self.flush_ms, 6),
            "allowance_ms_per_call": round(allowed / calls, 6),
            "calls": calls,
            "messages": len(excess),
            "messages_unexplained": sum(e > 0 for e in excess),
            "load_factor": round(self.load_factor, 2),
        }
        if statistics.median(excess) > 0:
            raise Rejected(
                INCONSISTENT,
                f"the judge's clock saw {wall / calls:.4f} ms a call where the candidate claimed "
                f"{claimed / calls:.4f} ms (allowance {allowed / calls:.4f} ms, flush {self.flush_ms:.4f} ms; "
                f"{evidence['messages_unexplained']} of {len(excess)} messages unexplained)",
                evidence,
            )
        if claimed > wall * 1.05 + 0.05:
            raise Rejected(INCONSISTENT, "the claimed times exceed the judge's own wall time", evidence)
        return {"host_ms": evidence["judge_wall_ms_per_call"], "host_check": evidence}

    def _allowance(self, calls: int, launches: int) -> float:
        kind = self.clock
        out_bytes = sum(b.numel() * b.element_size() for b in self.slots[0].buffers if b is not None)
        gbps = (self.options.get("ceilings") or {}).get("copy_gbps") or COPY_GBPS_FLOOR[kind]
        copy_ms = 2 * out_bytes / (gbps * 1e9) * 1e3  # read and written once
        python_ms = CALL_ALLOWANCE_MS[kind] + LAUNCH_ALLOWANCE_MS[kind] * min(launches, MAX_ALLOWED_LAUNCHES)
        return MESSAGE_ALLOWANCE_MS[kind] + calls * (python_ms * self.load_factor + copy_ms)

    def _measure_load(self) -> None:
        """How much slower our harness's per-call steps run here than on an idle machine (1.0 at most idle), timed
        in this process with the timing child's own code on a trivial call; kept as the highest seen."""
        from kernelagent.bench.timing_runner import CudaClock, HostClock, store

        clock = CudaClock() if self.clock == "cuda" else HostClock()
        slot = self.slots[0]
        outputs = [b.clone() if b is not None else 0.0 for b in slot.buffers]
        calls = [lambda: outputs] * 16
        stores = [lambda out: store(out, slot.buffers)] * 16
        started = time.perf_counter()
        claimed, _after = clock.run_calls(calls, stores, flush=False)
        per_call = ((time.perf_counter() - started) * 1e3 - sum(claimed)) / len(calls)
        factor = min(MAX_LOAD_FACTOR, max(1.0, per_call / IDLE_HARNESS_MS[self.clock]))
        self.load_factor = max(getattr(self, "load_factor", 1.0), factor)
        self.outcome["load_factor"] = round(self.load_factor, 2)

    def _work_after(self, record: Record, ms: float) -> None:
        if not record.after:
            return
        after = statistics.median(record.after)
        if after > max(AFTER_LIMIT_MS, AFTER_LIMIT_FRACTION * ms):
            raise Rejected(
                INCONSISTENT,
                f"work was still running after the timed calls: a device-wide synchronise after the end mark "
                f"waited {after:.4f} ms (median) against a claimed {ms:.4f} ms",
                {"after_ms": after, "claimed_ms": ms},
            )

    def _floor(self, ms: float) -> dict | None:
        """Below the memory floor (the bytes every kernel must move at the measured copy bandwidth) no kernel can
        run: such a median is a measurement cheat, rejected with the evidence."""
        ceilings = self.options.get("ceilings") or {}
        if not ceilings.get("copy_gbps") or (self.clock != "cuda" and not self.options.get("floor_on_host")):
            return None
        from kernelagent.bench.roofline import physical_floor_ms

        floor = physical_floor_ms(self.traffic["floor_bytes"], ceilings)
        evidence = {"floor_ms": floor, "claimed_ms": ms, "margin": FLOOR_MARGIN, **self.traffic}
        if ms < FLOOR_MARGIN * floor:
            raise Rejected(
                FLOOR,
                f"a median of {ms:.5f} ms is below the physical floor of {floor:.5f} ms "
                f"({self.traffic['floor_bytes']} bytes of inputs and outputs at {ceilings['copy_gbps']} GB/s)",
                evidence,
            )
        return {"floor_ms": floor}

    def _child_problems(self, message: dict) -> None:
        """What the child says about itself can only make its own result worse."""
        guard = self.outcome.get("guard") or {}
        refusals = (guard.get("build_refusals") or []) + (guard.get("forward_refusals") or [])
        if refusals:  # streamed by the child's audit hook as they happened (one candidate per process)
            raise Rejected(TAMPER, f"the candidate's process tried what it may not: {', '.join(refusals[:4])}")
        if _count(message.get("new_threads")) > 0:
            raise Rejected(THREADS, f"threads were left running in the timing process ({message['new_threads']} new)")
        tampered = message.get("tampered")
        if isinstance(tampered, list) and tampered:
            names = ", ".join(str(t)[:80] for t in tampered[:6])
            raise Rejected(TAMPER, f"the candidate replaced harness or timing functions: {names}")
        ops = message.get("compute_ops")
        if isinstance(ops, list) and ops:
            raise CandidateError(
                "PyTorch compute ran outside Triton while timed: " + ", ".join(str(o)[:60] for o in ops[:5])
            )

    # -- slots

    def _lend_slots(self) -> list[Slot]:
        inputs, _high, low = self.reference.draw(Draw("timing"), high=False)
        with self.reference.lock:  # the model is shared with the judge's other sessions; clones: it may mutate them
            copies = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
            self.traffic = _traffic(self.reference.model, copies, low)
            del copies
        count = max(
            MIN_SLOTS, min(MAX_SLOTS, SLOT_BUDGET_BYTES[self.reference.device] // max(1, self.traffic["draw_bytes"]))
        )
        slots, described, fds = [], [], []
        lender = self.session.lent
        for k in range(count):
            if k:
                inputs, _high, low = self.reference.draw(Draw("timing"), high=False)
            slot = Slot([], [], [x for x in low])
            entry: dict = {"inputs": [], "outputs": []}
            for x in inputs:
                if isinstance(x, torch.Tensor):
                    shared, descriptor, tensor_fds = lender.allocate(list(x.shape), x.dtype, x.device)
                    shared.copy_(x)
                    slot.inputs.append(shared)
                    entry["inputs"].append(descriptor)
                    fds += tensor_fds
                else:
                    slot.inputs.append(x)
                    entry["inputs"].append(
                        {"number": x} if type(x) in (int, float, bool) else {"value": wire.pack_object(x)}
                    )
            for expected in low:
                if isinstance(expected, torch.Tensor):
                    buffer, descriptor, tensor_fds = lender.allocate(
                        list(expected.shape), expected.dtype, expected.device
                    )
                    slot.buffers.append(buffer)
                    entry["outputs"].append(descriptor)
                    fds += tensor_fds
                else:
                    slot.buffers.append(None)
                    entry["outputs"].append({"python": type(expected).__name__})
            _poison(slot.buffers)
            slots.append(slot)
            described.append(entry)
        self.session._send_with_fds({"event": "slots", "slots": described}, fds)
        return slots

    def _refresh(self, slot: Slot) -> None:
        """A fresh draw written into the slot in place (same memory, new contents), its expected outputs, NaN
        buffers: a cache keyed on pointers or on contents has never seen these inputs."""
        # The float64 reference too: compared against the problem dtype's alone, an honest fp32 sum of 64M elements
        # in another order failed its timed calls on the H200 while it had passed verification.
        inputs, high, low = self.reference.draw(Draw("timing"))
        for shared, x in zip(slot.inputs, inputs, strict=True):
            if isinstance(shared, torch.Tensor):
                shared.copy_(x)
        slot.expected, slot.expected_high = low, high
        _poison(slot.buffers)

    def _own_flush_ms(self) -> float:
        """The L2 flush the child runs before each flushed call, timed here (the child's own figure is not ours to
        believe); 0.9x of it is subtracted from the judge's wall time per flushed call."""
        if self.reference.device != "cuda" or self.clock != "cuda":
            return 0.0
        from kernelagent.bench.timing_runner import CudaClock

        clock = CudaClock()
        times = clock.time_each(clock.flush, 7, flush=False)
        del clock
        torch.cuda.empty_cache()
        return 0.9 * statistics.median(times)

    def _receive(self, event: str, timeout_s: float) -> dict:
        message = self.session._expect(event, deadline=time.monotonic() + timeout_s)
        if message is None:
            if self.outcome.get("error"):
                self.outcome["ended"] = str(self.outcome["error"].get("message", ""))[:500]
            raise wire.WireError("the timing child ended the session")
        return message


class CandidateError(Exception):
    def __init__(self, message: str, *, restart: bool = False) -> None:
        super().__init__(message)
        self.restart = restart


def _poison(buffers: list) -> None:
    for buffer in buffers:
        if buffer is not None:
            buffer.fill_(float("nan") if buffer.is_floating_point() else -1)


def _claims(value: object, n: int | None) -> list[float] | None:
    if not isinstance(value, list) or (n is not None and len(value) != n):
        return None
    out = []
    for x in value:
        if type(x) not in (int, float) or not math.isfinite(x) or x < 0:
            return None
        out.append(float(x))
    return out


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


def _traffic(model: torch.nn.Module, inputs: list, outputs: list) -> dict:
    """The roofline's bytes and FLOPs (bench/roofline.traffic), the bytes of one draw, and the floor's bytes: the
    outputs and every input tensor whose contents change the outputs (one the reference ignores is not counted;
    parameters are not counted either, as a forward may legitimately not read all of them)."""
    from kernelagent.bench.roofline import traffic

    with torch.no_grad():
        facts = traffic(model, inputs, outputs)
        read = [x for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and _matters(model, inputs, outputs, i)]
    written = [t for t in outputs if isinstance(t, torch.Tensor)]
    tensors = [t for t in list(inputs) + list(outputs) if isinstance(t, torch.Tensor)]
    floating = [t for t in tensors if t.is_floating_point()]
    return {
        **facts,
        "dtype": str(floating[0].dtype).removeprefix("torch.") if floating else "float32",
        "floor_bytes": sum(t.numel() * t.element_size() for t in read + written),
        "draw_bytes": sum(t.numel() * t.element_size() for t in tensors),
    }


def _matters(model: torch.nn.Module, inputs: list, outputs: list, index: int) -> bool:
    """Whether the outputs change when input `index` alone gets other contents (floats only: other inputs, such as
    indices, are left out of the floor rather than risk an invalid one)."""
    x = inputs[index]
    if not x.is_floating_point() or x.numel() == 0:
        return False
    changed = [y.clone() if isinstance(y, torch.Tensor) else y for y in inputs]
    changed[index] = torch.randn_like(x) * 3 + 1
    try:
        again = model(*changed)
    except Exception:  # noqa: BLE001 - the reference refuses such contents: leave the input out of the floor
        return False
    again = flatten_outputs(again)
    return any(
        isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and not torch.equal(a, b)
        for a, b in zip(again, outputs, strict=False)
    )
