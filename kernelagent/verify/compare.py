"""The trusted comparison: runs in our process on outputs the candidate's process saved, never inside it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from kernelagent.verify.tolerances import tolerance_for


@dataclass
class Comparison:
    ok: bool
    kind: str = ""  # "", "structure", "shape", "dtype", "mismatch"
    message: str = ""
    evidence: str = ""
    stats: dict = field(default_factory=dict)


def flatten_outputs(value: object) -> list[object]:
    """A forward may return a tensor, a tuple/list of tensors, or a Python number: compare leaf by leaf."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in flatten_outputs(item)]
    return [value]


def compare_outputs(
    got: object, expected: object, *, tf32: bool = False, rtol: float | None = None, atol: float | None = None
) -> Comparison:
    got_leaves, expected_leaves = flatten_outputs(got), flatten_outputs(expected)
    if len(got_leaves) != len(expected_leaves):
        return Comparison(
            False, "structure", f"forward returned {len(got_leaves)} outputs, the reference returns {len(expected_leaves)}"
        )
    stats: dict = {"max_abs_err": 0.0, "max_rel_err": 0.0}
    for index, (g, e) in enumerate(zip(got_leaves, expected_leaves, strict=True)):
        result = _compare_leaf(g, e, index, tf32=tf32, rtol=rtol, atol=atol)
        if not result.ok:
            return result
        stats["max_abs_err"] = max(stats["max_abs_err"], result.stats.get("max_abs_err", 0.0))
        stats["max_rel_err"] = max(stats["max_rel_err"], result.stats.get("max_rel_err", 0.0))
    return Comparison(True, stats=stats)


def _compare_leaf(got: object, expected: object, index: int, **tol: object) -> Comparison:
    where = f"output {index}"
    if not isinstance(expected, torch.Tensor):
        return _compare_scalar(got, expected, where)
    if not isinstance(got, torch.Tensor):
        return Comparison(False, "structure", f"{where}: expected a tensor, got {type(got).__name__}")
    if got.shape != expected.shape:
        return Comparison(False, "shape", f"{where}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if got.dtype != expected.dtype:
        return Comparison(False, "dtype", f"{where}: dtype {got.dtype}, expected {expected.dtype}")
    return _compare_values(got, expected, where, **tol)


def _compare_scalar(got: object, expected: object, where: str) -> Comparison:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if type(got) is not type(expected) and not (isinstance(got, (int, float)) and isinstance(expected, (int, float))):
        return Comparison(False, "structure", f"{where}: expected {type(expected).__name__}, got {type(got).__name__}")
    if isinstance(expected, float) and not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-4):
        return Comparison(False, "mismatch", f"{where}: {got!r} != expected {expected!r}")
    if not isinstance(expected, float) and got != expected:
        return Comparison(False, "mismatch", f"{where}: {got!r} != expected {expected!r}")
    return Comparison(True)


def _compare_values(got: torch.Tensor, expected: torch.Tensor, where: str, *, tf32: bool, rtol, atol) -> Comparison:
    rtol_, atol_ = tolerance_for(expected.dtype, tf32=tf32, rtol=rtol, atol=atol)
    if got.numel() == 0:
        return Comparison(True)
    g, e = got.detach().to(torch.float64), expected.detach().to(torch.float64)
    # Non-finite values must appear exactly where the reference has them (same sign for infinities).
    bad_nonfinite = (torch.isnan(g) != torch.isnan(e)) | (torch.isinf(g) != torch.isinf(e)) | (
        torch.isinf(e) & (g != e)
    )
    finite = torch.isfinite(e) & torch.isfinite(g)
    scale = max(1.0, float(e[torch.isfinite(e)].pow(2).mean().sqrt()) if finite.any() else 1.0)
    abs_err = torch.where(finite, (g - e).abs(), torch.zeros_like(g))
    rel_err = abs_err / e.abs().clamp_min(1e-12)
    allowed = atol_ * scale + rtol_ * e.abs()
    bad = bad_nonfinite | (finite & (abs_err > allowed))
    stats = {
        "max_abs_err": float(abs_err.max()),
        "max_rel_err": float(torch.where(finite, rel_err, torch.zeros_like(rel_err)).max()),
        "rtol": rtol_,
        "atol": atol_ * scale,
    }
    if not bad.any():
        return Comparison(True, stats=stats)
    count = int(bad.sum())
    flat_bad = bad.flatten().nonzero().flatten()
    worst = int(torch.argmax(torch.where(bad, abs_err, torch.full_like(abs_err, -1.0))).item())
    worst_index = tuple(int(i) for i in _unravel(worst, got.shape))
    sample = [
        f"  at {tuple(int(i) for i in _unravel(int(j), got.shape))}: got {g.flatten()[j].item():.6g}, "
        f"expected {e.flatten()[j].item():.6g}"
        for j in flat_bad[:6]
    ]
    message = (
        f"{where}: {count} of {got.numel()} elements differ beyond rtol={rtol_:g}, atol={atol_ * scale:.3g} "
        f"(max abs err {stats['max_abs_err']:.3g} at index {worst_index})"
    )
    if bool(bad_nonfinite.any()):
        message += "; NaN/Inf where the reference has none (or the reverse)"
    return Comparison(False, "mismatch", message, "first mismatches:\n" + "\n".join(sample), stats)


def _unravel(flat_index: int, shape: torch.Size) -> list[int]:
    index = []
    for dim in reversed(shape):
        index.append(flat_index % dim)
        flat_index //= dim
    return list(reversed(index))
