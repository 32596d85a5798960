"""The trusted judge: one process per run and device that owns the inputs, the expected outputs and the comparison.

    python -m kernelagent.verify.judge CONFIG.json CONTROL_FD

It runs the user's reference (trusted, like the user), and for every candidate a session over a socket whose other
end is the candidate's stdin: it lends the initial state, then, only after the candidate's model is built, draws
each input set from a fresh unpredictable seed, computes the reference in the problem's dtype and in float64, lends
the inputs and an output buffer per output, and compares what the candidate wrote there with its own outputs, on
the device. Nothing the candidate writes is unpickled, loaded or trusted beyond its shape: a verdict needs every
planned draw judged here. The agent talks to the judge over CONTROL_FD (verify/judge_client.py).
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kernelagent.verify import verdict as V
from kernelagent.verify import wire
from kernelagent.verify.compare import compare_outputs, flatten_outputs
from kernelagent.verify.loading import load_module, pick_device

LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Extra draws beyond get_inputs(): the same inputs scaled, where the reference stays finite (catches overflow that
# unit-scale data hides, e.g. exp without max-subtraction in fp16, and absolute epsilons that hide small data).
# x64 reaches past exp's fp32 range (88) from unit normals; an outside attacker passed a softmax without
# max-subtraction and a relu that is wrong only above |x| = 100 when the scales were x16 and x1/16.
MAGNITUDES = (64.0, 1 / 64)
# Second-shape fallbacks for problems whose sizes are literals in get_inputs(): the drawn inputs cut to an odd,
# smaller extent along one dimension, tried in this order until the reference accepts one and its output changes.
SLICINGS = ("dim 0 of every input", "dim 0 of the first input", "last dim of every input")
# The second shape grows (about 1.5x, odd) where a draw's inputs take at most this much memory, and shrinks (about
# 0.5x, odd) above it, where published sizes would not fit twice. Growing is what catches a hard-coded size: a kernel
# fixed at the spec's extent leaves the rest unwritten, while on a smaller shape it computes the right values and
# only overruns (an outside attacker's hard-coded 16x256 relu passed a smaller shape whenever the overrun did not
# crash).
GROW_LIMIT_BYTES = 1 << 30
_CONTROL_LIMIT = 1 << 20


@dataclass
class Draw:
    """One planned input set: where its inputs come from."""

    label: str
    scale: float = 1.0
    sizes: dict[str, int] = field(default_factory=dict)  # a second shape: size constants changed for get_inputs()
    slicing: str | None = None  # a second shape for literal sizes: one of SLICINGS
    grow: bool = False  # with slicing: extend by fresh rows instead of cutting


class Reference:
    """The user's problem, built once: the model in the problem's dtype, its float64 twin, and the draw plan."""

    def __init__(self, config: dict) -> None:
        self.device = pick_device(config["device"])
        self.problem = load_module(Path(config["problem_path"]), "kernelagent_reference")
        self.sizes_overridden = _apply_sizes(self.problem, config.get("sizes", {}))
        self.low = LOW_PRECISION.get(config.get("precision", "spec"))
        self.warnings: list[str] = []
        self.lock = threading.Lock()  # global RNG, module-level size constants and the reference's own state
        init_inputs = list(self.problem.get_init_inputs())
        torch.manual_seed(secrets.randbits(63))
        model = self.problem.Model(*init_inputs).to(self.device).eval()
        state = {k: v.detach() for k, v in model.state_dict().items()}
        if self.low is not None:
            # The candidate gets weights rounded to the low precision; both references use the rounded values.
            state = {k: v.to(self.low) if v.is_floating_point() else v for k, v in state.items()}
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
            model = model.to(self.low)
        self.model = model
        self.state = state
        self.init_inputs = init_inputs
        self.high = self._float64_twin_or_none(model)
        self.mutates_inputs = False
        self.description = self._describe_first_draw()
        self.plan = self._plan(int(config["draws"]), bool(config.get("extra_draws", True)))
        if self.device == "cuda":
            torch.cuda.empty_cache()  # preparing peaked (a draw run twice, a shape probe); keep only what stays

    # -- drawing and running

    def draw(self, spec: Draw, *, high: bool = True) -> tuple[list, list | None, list]:
        """(inputs for the candidate, float64 expected outputs, expected outputs in the problem's dtype); without
        `high`, the float64 run is skipped (None)."""
        with self.lock:
            torch.manual_seed(secrets.randbits(63))  # unpredictable, and drawn after the candidate was built
            saved = _apply_sizes(self.problem, spec.sizes) if spec.sizes else {}
            try:
                with torch.device(self.device):
                    inputs = [_to_device(x, self.device) for x in self.problem.get_inputs()]
                    more = [_to_device(x, self.device) for x in self.problem.get_inputs()] if spec.grow else None
            finally:
                _restore_sizes(self.problem, saved)
            if spec.slicing:
                inputs = _reshaped(inputs, spec.slicing, more)
            if self.low is not None:
                inputs = [x.to(self.low) if _is_float(x) else x for x in inputs]
            if spec.scale != 1.0:
                inputs = [x * spec.scale if _is_float(x) else x for x in inputs]
            expected = self._run_high(inputs) if high else None
            pristine = (
                [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs] if self.mutates_inputs else inputs
            )
            low = self._run(self.model, inputs)
        return pristine, expected, low

    def _sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def _float64_twin_or_none(self, model: torch.nn.Module) -> torch.nn.Module | None:
        try:
            return _float64_twin(model)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            self.warnings.append("the float64 reference does not fit in GPU memory; compared in the problem's dtype")
            return None

    def _run_high(self, inputs: list) -> list | None:
        """The float64 reference, or None where it does not fit on the device (then only the problem dtype's
        reference is compared against, with dtype-based allowances, and the harness says so)."""
        if self.high is None:
            return None
        try:
            return self._run(self.high, [_to_float64(x) for x in inputs])
        except torch.OutOfMemoryError:
            self.high = None
            if self.device == "cuda":
                torch.cuda.empty_cache()
            self.warnings.append("the float64 reference does not fit in GPU memory; compared in the problem's dtype")
            return None

    @staticmethod
    def _run(model: torch.nn.Module, inputs: list) -> list:
        with torch.no_grad():
            return [x.detach() if isinstance(x, torch.Tensor) else x for x in flatten_outputs(model(*inputs))]

    # -- the plan

    def _plan(self, draws: int, extra: bool) -> list[Draw]:
        plan = [Draw(f"draw {k}") for k in range(draws)]
        if extra:
            plan += [Draw(f"inputs x{scale:g}", scale=scale) for scale in MAGNITUDES]
            second = self._second_shape()
            if second:
                plan.append(Draw("second shape " + ",".join(f"{k}={v}" for k, v in second.items()), sizes=second))
            else:
                plan += self._sliced_shape()
        return plan

    def _sliced_shape(self) -> list[Draw]:
        """The first SLICINGS entry the reference accepts with a changed output shape (none: no second shape)."""
        base = [entry.get("shape") for entry in self.description["outputs"]] if hasattr(self, "description") else None
        grow = self._may_grow()
        how = "extended by fresh rows" if grow else "cut"
        for slicing in SLICINGS:
            spec = Draw(f"second shape: {slicing} {how} to an odd length", slicing=slicing, grow=grow)
            try:
                _inputs, _high, low = self.draw(spec, high=False)
            except Exception:  # noqa: BLE001 - the reference rejects that shape: try the next way
                continue
            shapes = [list(x.shape) if isinstance(x, torch.Tensor) else None for x in low]
            if _all_finite(low) and shapes != base:
                return [spec]
        return []

    def _may_grow(self) -> bool:
        itemsize = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2, "int16": 2}
        total = 0
        for entry in self.description["inputs"]:
            count = 1
            for dim in entry.get("shape", []):
                count *= dim
            total += count * itemsize.get(entry.get("dtype", ""), 1)
        return total <= GROW_LIMIT_BYTES

    def _second_shape(self) -> dict[str, int]:
        """Size constants that only get_inputs() reads, each changed to another odd value (larger where memory
        allows, else smaller); {} when none can be."""
        names = [n for n, v in vars(self.problem).items() if type(v) is int and not n.startswith("_") and v >= 3]
        reference_init = _fingerprint(self.init_inputs)
        grow = self._may_grow()
        chosen: dict[str, int] = {}
        for name in names:
            value = getattr(self.problem, name)
            candidate = _other_extent(value, grow)
            if candidate == value:
                continue
            saved = _apply_sizes(self.problem, {name: candidate})
            try:
                changes_init = _fingerprint(list(self.problem.get_init_inputs())) != reference_init
            except Exception:  # noqa: BLE001 - the user's code may reject the size; then it stays fixed
                changes_init = True
            finally:
                _restore_sizes(self.problem, saved)
            if not changes_init:
                chosen[name] = candidate
        return chosen if chosen and self._runs_with(chosen) else {}

    def _runs_with(self, sizes: dict[str, int]) -> bool:
        try:
            _inputs, _high, low = self.draw(Draw("probe", sizes=sizes))
        except Exception:  # noqa: BLE001 - e.g. a reshape that needs the original size: no second shape then
            return False
        return all(not isinstance(x, torch.Tensor) or bool(torch.isfinite(x).all()) for x in low if _is_float(x))

    def _describe_first_draw(self) -> dict:
        with self.lock:
            torch.manual_seed(secrets.randbits(63))
            with torch.device(self.device):
                inputs = [_to_device(x, self.device) for x in self.problem.get_inputs()]
            if self.low is not None:
                inputs = [x.to(self.low) if _is_float(x) else x for x in inputs]
            before = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
            self._run(self.model, before)  # warm-up: lazy initialisation and library loading are not the forward
            self._sync()
            started = time.perf_counter()
            outputs = self._run(self.model, inputs)
            self._sync()
            self.forward_s = time.perf_counter() - started
            self.mutates_inputs = any(
                isinstance(a, torch.Tensor) and not torch.equal(a, b) for a, b in zip(before, inputs, strict=True)
            )
            again = self._run(self.model, before)
        if not compare_outputs(again, outputs).ok:
            self.warnings.append("the reference is not deterministic on the same inputs; comparisons may be flaky")
        for i, x in enumerate(before):
            if _is_float(x) and x.numel() > 1 and bool((x == x.flatten()[0]).all()):
                self.warnings.append(f"get_inputs()[{i}] is constant; it cannot catch indexing bugs")
        return {"inputs": _describe(before), "outputs": _describe(outputs)}


# ------------------------------------------------------------------------------------------------------------------
# One candidate's session


class Session:
    """Judges one candidate over its socket; the outcome is a JSON dict the agent combines with the sandbox facts."""

    def __init__(self, reference: Reference, sock: socket.socket, options: dict) -> None:
        self.reference = reference
        self.sock = sock
        self.options = options
        self.lent = wire.SharedTensors()  # for the whole session: the initial state (timing: also its inputs)
        self.draw_lent = wire.SharedTensors()  # one draw's inputs and output buffers
        self.outcome: dict = {"phase": "start", "draws_planned": len(reference.plan), "draws_judged": 0, "guard": {}}

    def run(self) -> dict:
        try:
            self._judge()
        except wire.WireError as err:
            self.outcome.setdefault("ended", f"the candidate's channel ended: {err}")
        except Exception as err:  # noqa: BLE001 - a judge bug must be reported as ours, never as the candidate's
            self.outcome["judge_error"] = f"{type(err).__name__}: {err}\n{traceback.format_exc()[-2000:]}"
        finally:
            self.lent.close()
            self.draw_lent.close()
            if self.reference.device == "cuda":
                torch.cuda.ipc_collect()
                # Give freed blocks back to the device: other judges and candidates on this GPU are other processes,
                # and a caching allocator holding its peak made big problems run out of memory side by side.
                torch.cuda.empty_cache()
        return self.outcome

    def _judge(self) -> None:
        reference = self.reference
        if self.options.get("kind") == "lend":
            self._lend_only()
            return
        self._send_init()
        built = self._expect("built")
        if built is None:
            return
        self.outcome |= {"phase": "forward", "import_s": built.get("import_s"), "build_s": built.get("build_s")}
        self._note_guard(built, "build")
        for k, spec in enumerate(reference.plan):
            inputs, high, low = reference.draw(spec)
            if spec.scale != 1.0 and not _all_finite(low):
                self.outcome.setdefault("skipped", []).append(f"{spec.label}: the reference overflows there")
                self.outcome["draws_judged"] = k + 1
                continue
            done = self._lend_draw(k, inputs, low)
            if done is None:
                return
            self._note_guard(done, spec.label)
            failure = self._judge_draw(done, spec, high, low)
            del inputs, high, low
            self._release_draw()
            if failure is not None:
                self.outcome["verdict"] = failure
                return
            self.outcome["draws_judged"] = k + 1
        wire.send(self.sock, {"event": "finish"})
        bye = self._expect("bye")
        if bye is None:
            return
        self._note_guard(bye, "after the last draw")
        self.outcome["phase"] = "done"
        self.outcome["verdict"] = self._final_verdict()

    def _lend_only(self) -> None:
        """For timing: the initial state and one fresh input draw, then wait until the process is gone."""
        self._send_init()
        inputs, _high, _low = self.reference.draw(Draw("timing"), high=False)
        lent, fds = self._lend_inputs(inputs, self.lent)
        self._send_with_fds({"event": "inputs", "inputs": lent}, fds)
        self.outcome["phase"] = "lent"
        while True:
            message, fds = wire.receive(self.sock, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES)  # ends at EOF
            for fd in fds:
                os.close(fd)

    def _release_draw(self) -> None:
        """One draw's inputs and buffers go once it is judged: at published sizes, keeping every draw's would not fit.
        (Where the candidate still maps them, CUDA keeps the memory until it lets go; its runner drops them per draw.)"""
        self.buffers = []
        self.draw_lent.close()
        if self.reference.device == "cuda":
            torch.cuda.ipc_collect()

    def _lend_inputs(self, inputs: list, lender: wire.SharedTensors) -> tuple[list, list[int]]:
        lent_inputs, fds = [], []
        for x in inputs:
            if isinstance(x, torch.Tensor):
                descriptor, tensor_fds = lender.lend(x, copy=False)  # the reference has already run on it
                lent_inputs.append(descriptor)
                fds += tensor_fds
            elif type(x) in (int, float, bool):
                lent_inputs.append({"number": x})  # no pickle for what JSON can carry
            else:
                lent_inputs.append({"value": wire.pack_object(x)})
        return lent_inputs, fds

    def _send_init(self) -> None:
        state, fds = [], []
        for name, tensor in self.reference.state.items():
            descriptor, tensor_fds = self.lent.lend(tensor)
            state.append({"name": name, **descriptor})
            fds += tensor_fds
        config = {
            "device": self.reference.device,
            "dtype": self.options.get("dtype"),
            "entry": self.options.get("entry", "ModelNew"),
            "gpu_memory_bytes": self.options.get("gpu_memory_bytes"),
            "interpret": self.reference.device == "cpu",
            "seed": secrets.randbits(63),
        }
        message = {
            "event": "init",
            "config": config,
            "state": state,
            "init_inputs": wire.pack_object(self.reference.init_inputs),
        }
        self._send_with_fds(message, fds)

    def _lend_draw(self, k: int, inputs: list, low: list) -> dict | None:
        self.draw_lent = wire.SharedTensors()
        lent_inputs, fds = self._lend_inputs(inputs, self.draw_lent)
        outputs, self.buffers = [], []
        for expected in low:
            if isinstance(expected, torch.Tensor):
                buffer, descriptor, tensor_fds = self.draw_lent.allocate(
                    list(expected.shape), expected.dtype, expected.device
                )
                # NaN until written: an output the candidate never wrote cannot pass by matching stale memory.
                buffer.fill_(float("nan") if expected.is_floating_point() else -1)
                outputs.append(descriptor)
                fds += tensor_fds
                self.buffers.append(buffer)
            else:
                outputs.append({"python": type(expected).__name__})
                self.buffers.append(None)
        self._send_with_fds({"event": "draw", "k": k, "inputs": lent_inputs, "outputs": outputs}, fds)
        done = self._expect("draw_done")
        if done is not None and done.get("k") != k:
            self.outcome["verdict"] = V.failed(V.TAMPER, f"the candidate answered draw {done.get('k')!r} for draw {k}")
            return None
        return done

    def _send_with_fds(self, message: dict, fds: list[int]) -> None:
        try:
            for start in range(0, max(1, len(fds)), wire.MAX_FDS_PER_MESSAGE):
                chunk = fds[start : start + wire.MAX_FDS_PER_MESSAGE]
                if start + wire.MAX_FDS_PER_MESSAGE >= len(fds):
                    wire.send(self.sock, message, chunk)
                else:
                    wire.send(self.sock, {"event": "fds"}, chunk)
        finally:
            for fd in fds:
                os.close(fd)

    def _expect(self, event: str) -> dict | None:
        """The next message of that kind; guard events in between are kept; an error ends the session."""
        while True:
            message, fds = wire.receive(self.sock, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES)
            for fd in fds:
                os.close(fd)  # a candidate has nothing to hand us
            kind = message.get("event")
            if kind == "guard":
                self._note_streamed(message)
                continue
            if kind == "error":
                self.outcome["error"] = _clean_error(message)
                self.outcome["phase"] = str(message.get("phase", self.outcome["phase"]))[:40]
                return None
            if kind != event:
                self.outcome["verdict"] = V.failed(
                    V.TAMPER, f"the candidate sent {str(kind)[:40]!r} where {event!r} was due"
                )
                return None
            return message

    # -- evidence from the guard

    def _note_streamed(self, message: dict) -> None:
        guard = self.outcome["guard"]
        key = "refusals" if message.get("what") == "refused" else "streamed_ops"
        phase = "build" if self.outcome["phase"] == "start" else "forward"
        items = guard.setdefault(f"{phase}_{key}", [])
        if len(items) < 20:
            items.append(str(message.get("detail"))[:200])

    def _note_guard(self, message: dict, where: str) -> None:
        guard = self.outcome["guard"]
        if message.get("mode_active") is not True:
            guard.setdefault("mode_lost", where)
        if _count(message.get("new_threads")) > 0:
            guard.setdefault("threads", where)
        if where != "build":
            ops = (
                [str(op)[:120] for op in message.get("compute_ops", [])][:20]
                if isinstance(message.get("compute_ops"), list)
                else []
            )
            if ops:
                guard.setdefault("forward_ops", ops)

    def _guard_failure(self) -> V.Verdict | None:
        guard = self.outcome["guard"]
        refusals = guard.get("build_refusals", []) + guard.get("forward_refusals", [])
        if refusals:
            return V.failed(
                V.POLICY_VIOLATION,
                f"the candidate's process tried what it may not: {', '.join(refusals[:4])}",
                rule="runtime_refused",
            )
        ops = guard.get("forward_ops") or guard.get("forward_streamed_ops")
        if ops:
            return V.failed(
                V.POLICY_VIOLATION,
                f"PyTorch compute ran outside Triton kernels: {', '.join(ops[:8])}",
                "All arithmetic must happen inside @triton.jit kernels; the wrapper may only allocate, view and launch.",
                rule="runtime_torch_compute",
            )
        if "mode_lost" in guard:
            return V.failed(V.TAMPER, f"the runtime guard was switched off or displaced ({guard['mode_lost']})")
        if "threads" in guard:
            return V.failed(
                V.POLICY_VIOLATION, f"the candidate started threads ({guard['threads']})", rule="runtime_threads"
            )
        return None

    # -- the comparison

    def _judge_draw(self, done: dict, spec: Draw, high: list | None, low: list) -> V.Verdict | None:
        # "guard": "record" is for benchmarks that push reference code through the judge: its findings are kept in
        # the outcome but every draw is still compared. The agent never sets it for a candidate.
        failure = self._guard_failure()
        if failure is not None and self.options.get("guard") != "record":
            return failure
        launches = _count(done.get("launches"))
        self.outcome["launches"] = self.outcome.get("launches", 0) + launches
        if launches == 0:
            return V.failed(V.POLICY_VIOLATION, "forward launched no Triton kernel", rule="runtime_no_triton_launch")
        structure = done.get("structure")
        problem = _structure_problem(structure, low, self.reference.device)
        if problem:
            return V.failed(V.INTERFACE_ERROR, f"{spec.label}: {problem}")
        got = [
            buffer if buffer is not None else _scalar_of(entry)
            for buffer, entry in zip(self.buffers, structure, strict=True)
        ]
        comparison = compare_outputs(
            got,
            high if high is not None else low,
            low if high is not None else None,
            tf32=self.options.get("tf32", False),
            rtol=self.options.get("rtol"),
            atol=self.options.get("atol"),
        )
        if not comparison.ok:
            failure_class = V.NUMERICAL_MISMATCH if comparison.kind == "mismatch" else V.INTERFACE_ERROR
            return V.failed(
                failure_class, f"{spec.label}: {comparison.message}", comparison.evidence, **comparison.stats
            )
        worst = self.outcome.setdefault("worst", {})
        for key, value in comparison.stats.items():
            if isinstance(value, (int, float)):
                worst[key] = max(worst.get(key, 0.0), float(value))
        return None

    def _final_verdict(self) -> V.Verdict:
        failure = self._guard_failure()
        if failure is not None:
            return failure
        plan = [d.label for d in self.reference.plan]
        return V.passed(
            f"matches the reference on {len(plan)} input draws ({', '.join(plan)})",
            launches=self.outcome.get("launches", 0),
            draws=plan,
            **self.outcome.get("worst", {}),
        )


def _structure_problem(structure: object, low: list, device: str) -> str | None:
    if not isinstance(structure, list) or not all(isinstance(entry, dict) for entry in structure):
        return "the candidate's report of its outputs is malformed"
    if len(structure) != len(low):
        return f"forward returned {len(structure)} outputs, the reference returns {len(low)}"
    for index, (entry, expected) in enumerate(zip(structure, low, strict=True)):
        where = f"output {index}"
        if not isinstance(expected, torch.Tensor):
            if "python" not in entry and entry.get("shape") not in ([], [1]):
                return f"{where}: expected a Python {type(expected).__name__}, got a tensor"
            continue
        if "python" in entry:
            return f"{where}: expected a tensor, got a Python {str(entry['python'])[:20]}"
        if entry.get("shape") != list(expected.shape):
            return f"{where}: shape {_short(entry.get('shape'))}, expected {tuple(expected.shape)}"
        if entry.get("dtype") != str(expected.dtype).removeprefix("torch."):
            return f"{where}: dtype {_short(entry.get('dtype'))}, expected {expected.dtype}"
        if entry.get("device") != torch.device(device).type:
            return f"{where}: on {_short(entry.get('device'))}, the reference's outputs are on {device}"
    return None


def _other_extent(value: int, grow: bool) -> int:
    """An odd extent about 1.5x (grow) or 0.5x the value; the value itself when there is none."""
    other = value + value // 2 + 1 if grow else value // 2 + 1
    other += 1 - other % 2  # odd: masks and tails are exercised
    return other if grow or other < value else value


def _reshaped(inputs: list, slicing: str, more: list | None) -> list:
    """Inputs changed along one dimension to an odd extent: extended by rows of `more` (a second, independent draw,
    so no row repeats) when given, else cut. Tensors of extent < 3 there are left alone."""
    first_tensor = next((i for i, x in enumerate(inputs) if isinstance(x, torch.Tensor) and x.dim()), None)
    dim = -1 if slicing.startswith("last") else 0
    out = []
    for i, x in enumerate(inputs):
        chosen = isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[dim] >= 3
        if chosen and (slicing != "dim 0 of the first input" or i == first_tensor):
            extent = _other_extent(x.shape[dim], more is not None)
            if more is not None:
                fresh = more[i].narrow(dim, 0, min(extent - x.shape[dim], more[i].shape[dim]))
                x = torch.cat([x, fresh], dim).contiguous()
            elif extent < x.shape[dim]:
                x = x.narrow(dim, 0, extent).contiguous()
        out.append(x)
    return out


def _all_finite(values: list) -> bool:
    return all(bool(torch.isfinite(x).all()) for x in values if _is_float(x))


def _scalar_of(entry: dict) -> object:
    value = entry.get("value")
    return value if type(value) in (int, float, bool) else None


def _short(value: object) -> str:
    return repr(value)[:60]


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0


def _clean_error(message: dict) -> dict:
    """The candidate's own account of its failure: text only, trimmed. It can only make its own verdict worse."""
    return {
        key: str(message.get(key, ""))[:limit]
        for key, limit in (("kind", 40), ("type", 80), ("message", 2000), ("traceback", 3000), ("feature", 200))
    }


# ------------------------------------------------------------------------------------------------------------------
# Helpers for the reference


def _apply_sizes(problem: object, sizes: dict[str, int]) -> dict[str, int]:
    """KernelBench problems keep sizes in module globals that get_inputs() reads at call time; returns old values."""
    saved = {}
    for name, value in sizes.items():
        if type(getattr(problem, name, None)) is not int:
            raise KeyError(f"--size {name}=...: the reference has no module-level integer named {name!r}")
        saved[name] = getattr(problem, name)
        setattr(problem, name, int(value))
    return saved


def _restore_sizes(problem: object, saved: dict[str, int]) -> None:
    for name, value in saved.items():
        setattr(problem, name, value)


def _float64_twin(model: torch.nn.Module) -> torch.nn.Module:
    twin = copy.deepcopy(model)
    return twin.to(torch.float64)


def _is_float(x: object) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _to_device(x: object, device: str) -> object:
    return x.to(device) if isinstance(x, torch.Tensor) else x


def _to_float64(x: object) -> object:
    return x.to(torch.float64) if _is_float(x) else x


def _fingerprint(values: list) -> str:
    return repr([(tuple(v.shape), str(v.dtype)) if isinstance(v, torch.Tensor) else v for v in values])


def _describe(values: list) -> list[dict]:
    return [
        {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
        if isinstance(v, torch.Tensor)
        else {"value": repr(v)[:40]}
        for v in values
    ]


# ------------------------------------------------------------------------------------------------------------------
# The process


def main(config_path: str, control_fd: str) -> int:
    control = socket.socket(fileno=int(control_fd))
    send_lock = threading.Lock()

    def tell(message: dict, fds: list[int] | None = None) -> None:
        with send_lock:
            wire.send(control, message, fds or [])

    config = json.loads(Path(config_path).read_text())
    started = time.perf_counter()
    try:
        reference = Reference(config)
    except Exception as err:  # the user's reference failed: say where, for the user (not the LLM)
        tell({"event": "failed", "error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-4000:]})
        return 1
    tell({"event": "ready", **_ready_facts(reference, time.perf_counter() - started)})
    sessions: dict[str, socket.socket] = {}
    while True:
        try:
            request, fds = wire.receive(control, limit=_CONTROL_LIMIT)
        except wire.WireError:
            return 0  # the agent is gone: nothing here may outlive it
        if request.get("op") == "judge" and fds:
            sock = socket.socket(fileno=fds[0])
            sessions[request["sid"]] = sock
            threading.Thread(target=_serve_session, args=(reference, sock, request, tell), daemon=True).start()
        elif request.get("op") == "close":
            sock = sessions.pop(request.get("sid"), None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the session's thread; it answers with what it has
                except OSError:
                    pass


def _serve_session(reference: Reference, sock: socket.socket, request: dict, tell) -> None:  # noqa: ANN001
    outcome = Session(reference, sock, request.get("options", {})).run()
    sock.close()
    tell({"event": "outcome", "sid": request["sid"], "outcome": outcome})


def _ready_facts(reference: Reference, prepare_s: float) -> dict:
    return {
        "device": reference.device,
        "prepare_s": round(prepare_s, 3),
        "reference_forward_s": round(reference.forward_s, 6),
        "plan": [d.label for d in reference.plan],
        "sizes_overridden": {k: [v, reference.problem.__dict__.get(k)] for k, v in reference.sizes_overridden.items()},
        "warnings": reference.warnings,
        "inputs": reference.description["inputs"],
        "outputs": reference.description["outputs"],
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if reference.device == "cuda" else None,
        "torch": torch.__version__,
        "pid": os.getpid(),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
