"""The user's reference as the judge holds it: the model in the problem's dtype and its float64 twin, and the plan
of input draws (the spec's, other magnitudes, a second shape), each drawn from a fresh unpredictable seed.

Runs only inside the judge process (verify/judge.py); a candidate never imports it.
"""

from __future__ import annotations

import contextlib
import copy
import math
import secrets
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kernelagent.verify.compare import compare_outputs, flatten_outputs
from kernelagent.verify.loading import load_module, pick_device

LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Extra draws beyond get_inputs(): the same inputs scaled, where the reference stays finite (catches overflow that
# unit-scale data hides, e.g. exp without max-subtraction in fp16, and absolute epsilons that hide small data).
# x64 reaches past exp's fp32 range (88) from unit normals; an outside attacker passed a softmax without
# max-subtraction and a relu that is wrong only above |x| = 100 when the scales were x16 and x1/16.
MAGNITUDES = (64.0, 1 / 64)
# A draw with some inputs exactly 0, where the reference stays finite: continuous random data never holds one, and
# real activations (after a relu) hold many. An outside attacker's relu, x * (1 + x/|x|) / 2, is NaN at 0 and passed.
ZEROS = 0.05
# A draw on a grid of halves (inputs rounded to multiples of GRID), where the reference stays finite: ties, repeated
# values and exact halves, which continuous random data never holds. An outside attacker's argmax that returns the last
# of equal maxima, and a round() that takes halves up instead of to even, passed every other draw.
GRID = 0.5
# Second-shape fallbacks for problems whose sizes are literals in get_inputs(): the drawn inputs cut to an odd,
# smaller extent along one dimension, tried in this order until the reference accepts one and its output changes.
SLICINGS = ("dim 0 of every input", "dim 0 of the first input", "last dim of every input")
# The second shape grows (about 1.5x, odd) where a draw's inputs take at most this much memory, and shrinks (about
# 0.5x, odd) above it, where published sizes would not fit twice. Growing is what catches a hard-coded size: a kernel
# fixed at the spec's extent leaves the rest unwritten, while on a smaller shape it computes the right values and
# only overruns (an outside attacker's hard-coded 16x256 relu passed a smaller shape whenever the overrun did not
# crash).
GROW_LIMIT_BYTES = 1 << 30


@dataclass
class Draw:
    """One planned input set: where its inputs come from."""

    label: str
    scale: float = 1.0
    zeros: float = 0.0  # the share of float input elements set to exactly 0
    grid: float = 0.0  # float inputs rounded to multiples of this (0: not rounded)
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
        with torch.device(self.device):  # parameters made on the device: a 2-billion-parameter MLP took 12 s and
            model = self.problem.Model(*init_inputs)  # 9 GiB of host memory when built on the host first
        model = model.to(self.device).eval()
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
            if spec.zeros:
                inputs = [x.masked_fill(torch.rand_like(x) < spec.zeros, 0) if _is_float(x) else x for x in inputs]
            if spec.grid:
                inputs = [torch.round(x / spec.grid) * spec.grid if _is_float(x) else x for x in inputs]
            expected = self._run_high(inputs) if high else None
            if high and self.device == "cuda":
                # The float64 run's activations stay reserved by the caching allocator otherwise: at KernelBench's
                # VisionAttention size the judge held 106 GiB of the H200 that way, and the candidate beside it ran
                # out of memory for its own 18 GiB (a false reject).
                torch.cuda.empty_cache()
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
            with _default_dtype(torch.float64):  # what the forward makes without a dtype (35_LSTM's h0) is float64 too
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
            plan.append(Draw(f"inputs with {ZEROS:.0%} exact zeros", zeros=ZEROS))
            plan.append(Draw(f"inputs on a grid of {GRID:g} (ties, halves)", grid=GRID))
            names = self._size_names()
            second = self._second_shape(names)
            if second:
                plan.append(Draw("second shape " + ",".join(f"{k}={v}" for k, v in second.items()), sizes=second))
            else:
                plan += self._sliced_shape()
            third = self._third_shape(list(second) or names)
            if third:
                plan.append(Draw("third shape " + ",".join(f"{k}={v}" for k, v in third.items()), sizes=third))
        return plan

    def _third_shape(self, names: list[str]) -> dict[str, int]:
        """The second shape's constants again, past twice their value: each at 2 (mod 4) where the reference takes
        that, else at 3x (which keeps whatever they divide). An outside attacker's kernels passed the 1.5x shape
        while wrong at other sizes: 4 rows per program with a grid short by 2 rows when rows = 2 (mod 4), and a
        block capped at 512 columns with no loop. 3x also serves where 1.5x broke a divisibility the reference
        needs (a head size hard-coded to 32 passed then). Only where the inputs stay within GROW_LIMIT_BYTES."""
        if not names:
            return {}
        for extent in (_two_mod_four_past_double, lambda value: 3 * value):
            sizes = {name: extent(getattr(self.problem, name)) for name in names}
            growth = math.prod(sizes[name] / getattr(self.problem, name) for name in names)
            if self._input_bytes() * growth > GROW_LIMIT_BYTES:
                return {}
            if self._runs_with(sizes):
                return sizes
        return {}

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
            if all_finite(low) and shapes != base:
                return [spec]
        return []

    def _may_grow(self) -> bool:
        return self._input_bytes() <= GROW_LIMIT_BYTES

    def _input_bytes(self) -> int:
        """Bytes of one draw's inputs at the spec's sizes."""
        itemsize = {"float64": 8, "int64": 8, "float32": 4, "int32": 4, "float16": 2, "bfloat16": 2, "int16": 2}
        total = 0
        for entry in self.description["inputs"]:
            count = 1
            for dim in entry.get("shape", []):
                count *= dim
            total += count * itemsize.get(entry.get("dtype", ""), 1)
        return total

    def _size_names(self) -> list[str]:
        """Module-level int constants that only get_inputs() reads: the sizes a second shape may change."""
        names = [n for n, v in vars(self.problem).items() if type(v) is int and not n.startswith("_") and v >= 3]
        # A value already baked into another module-level constant (`input_shape = (num_classes,)`) cannot change
        # alone: KernelBench's cross-entropy then draws targets past the class count, and on a GPU that is a
        # device-side assert, which ends the judge's CUDA context rather than raising.
        names = [n for n in names if not _baked_into_other_constants(self.problem, n)]
        reference_init = _fingerprint(self.init_inputs)
        kept = []
        for name in names:
            saved = _apply_sizes(self.problem, {name: getattr(self.problem, name) + 2})
            try:
                changes_init = _fingerprint(list(self.problem.get_init_inputs())) != reference_init
            except Exception:  # noqa: BLE001 - the user's code may reject the size; then it stays fixed
                changes_init = True
            finally:
                _restore_sizes(self.problem, saved)
            if not changes_init:
                kept.append(name)
        return kept

    def _second_shape(self, names: list[str]) -> dict[str, int]:
        """The size constants each changed to another odd value (larger where memory allows, else smaller); {} when
        none can be."""
        grow = self._may_grow()
        chosen = {name: _other_extent(getattr(self.problem, name), grow) for name in names}
        chosen = {name: value for name, value in chosen.items() if value != getattr(self.problem, name)}
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


def _baked_into_other_constants(problem: object, name: str) -> bool:
    value = getattr(problem, name)
    for other, constant in vars(problem).items():
        if other != name and not other.startswith("_") and isinstance(constant, tuple | list):
            if any(type(item) is int and item == value for item in constant):
                return True
    return False


def _two_mod_four_past_double(value: int) -> int:
    """The least extent above 2x the value that is 2 (mod 4)."""
    other = 2 * value + 1
    return other + (2 - other % 4) % 4


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


def all_finite(values: list) -> bool:
    return all(bool(torch.isfinite(x).all()) for x in values if _is_float(x))


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
    """The model copied to float64, with the functions it keeps as attributes re-pointed at the copy: a deep copy
    shares functions, so KernelBench's MiniGPTBlock (`self.mlpf = lambda x: m.c_proj(...)`, m = self.mlp) ran the
    original float32 layers from the twin."""
    memo: dict[int, object] = {}
    twin = copy.deepcopy(model, memo)
    for module in twin.modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, types.FunctionType) and value.__closure__:
                module.__dict__[name] = _rebound(value, memo)
    return twin.to(torch.float64)


def _rebound(function: types.FunctionType, memo: dict[int, object]) -> types.FunctionType:
    """`function` with each captured object that the deep copy copied replaced by its copy."""
    cells = []
    for cell in function.__closure__ or ():
        try:
            cells.append(types.CellType(memo.get(id(cell.cell_contents), cell.cell_contents)))
        except ValueError:  # an empty cell (a name assigned after the function was made)
            cells.append(cell)
    rebound = types.FunctionType(function.__code__, function.__globals__, function.__name__, function.__defaults__,
                                 tuple(cells))
    rebound.__kwdefaults__ = function.__kwdefaults__
    return rebound


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


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
