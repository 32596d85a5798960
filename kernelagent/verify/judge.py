"""The trusted judge: one process per run and device that owns the inputs, the expected outputs and the comparison.

    python -m kernelagent.verify.judge CONFIG.json CONTROL_FD

It runs the user's reference (trusted, like the user), and for every candidate a session over a socket whose other
end is the candidate's stdin: it lends the initial state, then, only after the candidate's model is built, draws
each input set from a fresh unpredictable seed, computes the reference in the problem's dtype and in float64, lends
the inputs and an output buffer per output, and compares what the candidate wrote there with its own outputs, on
the device. Nothing the candidate writes is unpickled, loaded or trusted beyond its shape: a verdict needs every
planned draw judged here. Timing sessions ("kind": "time", verify/judge_timing.py) lend rotating input slots
instead, refill them with a fresh draw before every timed call, and check every timed call's outputs. The agent
talks to the judge over CONTROL_FD (verify/judge_client.py).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from kernelagent.verify import verdict as V
from kernelagent.verify import wire
from kernelagent.verify.compare import compare_outputs, same_bits
from kernelagent.verify.judge_timing import TimingSession
from kernelagent.verify.reference import Draw, Reference, all_finite

_CONTROL_LIMIT = 1 << 20


# ------------------------------------------------------------------------------------------------------------------
# One candidate's session


class Session:
    """Judges one candidate over its socket; the outcome is a JSON dict the agent combines with the sandbox facts."""

    def __init__(self, reference: Reference, sock: socket.socket, options: dict) -> None:
        self.reference = reference
        self.sock = sock
        self.options = options
        self.lent = wire.SharedTensors()  # for the whole session: the initial state (timing: also its slots)
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
        if self.options.get("kind") == "time":
            TimingSession(self).run()  # every timed call checked: verify/judge_timing.py
            return
        self._send_init()
        built = self._expect("built")
        if built is None:
            return
        self.outcome |= {"phase": "forward", "import_s": built.get("import_s"), "build_s": built.get("build_s")}
        self._note_guard(built, "build")
        for k, spec in enumerate(reference.plan):
            inputs, high, low = reference.draw(spec)
            if (spec.scale != 1.0 or spec.zeros or spec.grid) and not all_finite(low):
                self.outcome.setdefault("skipped", []).append(f"{spec.label}: the reference is not finite there")
                self.outcome["draws_judged"] = k + 1
                continue
            done = self._lend_draw(k, inputs, low)
            if done is None:
                return
            self._note_guard(done, spec.label)
            failure = self._judge_draw(done, spec, high, low) or self._inputs_changed(spec, inputs)
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

    def _release_draw(self) -> None:
        """One draw's inputs and buffers go once it is judged: at published sizes, keeping every draw's would not fit.
        (Where the candidate still maps them, CUDA keeps the memory until it lets go; its runner drops them per draw.)"""
        self.buffers = []
        self.draw_lent.close()
        if self.reference.device == "cuda":
            torch.cuda.ipc_collect()

    def _lend_inputs(self, inputs: list, lender: wire.SharedTensors) -> tuple[list, list[int]]:
        """Descriptors and fds for a draw's inputs; the shared tensors are kept in self.lent_inputs (index, tensor),
        apart from the judge's own: a forward may not change its inputs where the reference does not."""
        lent_inputs, fds = [], []
        self.lent_inputs = []
        for i, x in enumerate(inputs):
            if isinstance(x, torch.Tensor):
                # The reference has already run on x; a copy is lent only where the check below needs x intact.
                shared, descriptor, tensor_fds = lender.lend_tensor(x, copy=not self.reference.mutates_inputs)
                self.lent_inputs.append((i, shared))
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
        if self.reference.device == "cuda":
            # Everything we wrote into lent memory lands before the candidate may touch it. An IPC handle's event
            # covers only work queued before the handle was made (the NaN fill of an output buffer comes after),
            # and a mapping the candidate still holds from an earlier draw waits on no event at all: on a busy GPU
            # our fill landed after the candidate's outputs and an honest kernel read as all NaN.
            torch.cuda.synchronize()
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

    def _expect(self, event: str, deadline: float | None = None) -> dict | None:
        """The next message of that kind; guard events in between are kept; an error ends the session."""
        while True:
            message, fds = wire.receive(self.sock, limit=wire.MAX_CANDIDATE_MESSAGE_BYTES, deadline=deadline)
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

    def _inputs_changed(self, spec: Draw, inputs: list) -> V.Verdict | None:
        """A forward that overwrote an input the reference leaves as it was (an outside attacker's in-place relu
        passed on its outputs alone): the caller's tensor would be destroyed."""
        if self.reference.mutates_inputs:
            return None
        for i, shared in self.lent_inputs:
            if not same_bits(shared, inputs[i]):
                changed = int((shared != inputs[i]).sum().item())  # a lent copy has the input's shape and dtype
                return V.failed(
                    V.NUMERICAL_MISMATCH,
                    f"{spec.label}: forward changed input {i} ({changed} of {inputs[i].numel()} elements); the "
                    "reference leaves its inputs as they were, and a caller may still need them",
                )
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
