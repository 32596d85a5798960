"""The trusted comparison: runs in our process on outputs the candidate's process saved, never inside it.

The rule (what is allowed, and why each constant has its value) is documented in tolerances.py. This module applies
it leaf by leaf, in chunks of the flattened tensors (CHUNK elements, on the tensors' own device), so that a
1.6e9-element output needs a few chunk-sized float64 temporaries, never a full-size float64 copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from kernelagent.verify import tolerances as T

CHUNK = 2**24
SAMPLES = 6


@dataclass
class Comparison:
    ok: bool
    kind: str = ""  # "", "structure", "shape", "dtype", "mismatch"
    message: str = ""
    evidence: str = ""
    stats: dict = field(default_factory=dict)


_INT_OF_WIDTH = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit-for-bit equality of two tensors of one shape and dtype (a NaN equals itself here; 0.0 is not -0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
        return False
    if a.is_complex():
        a, b = torch.view_as_real(a), torch.view_as_real(b)
    if a.is_floating_point():
        width = _INT_OF_WIDTH[a.element_size()]
        a, b = a.view(width), b.view(width)
    return torch.equal(a, b)


def flatten_outputs(value: object) -> list[object]:
    """A forward may return a tensor, a tuple/list of tensors, or a Python number: compare leaf by leaf."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in flatten_outputs(item)]
    return [value]


def compare_outputs(
    got: object,
    expected: object,
    low: object = None,
    *,
    tf32: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
) -> Comparison:
    """Compare a candidate's outputs with the high-precision reference `expected`, allowing what the reference
    computed in the problem's dtype (`low`) itself gets wrong. Without `low`, `expected` is in the output dtype and
    only dtype-epsilon allowances apply (tolerances.py)."""
    got_leaves, expected_leaves = flatten_outputs(got), flatten_outputs(expected)
    low_leaves = None if low is None else flatten_outputs(low)
    if low_leaves is not None and len(low_leaves) != len(expected_leaves):
        raise ValueError(
            f"the low-precision reference has {len(low_leaves)} outputs, the high one {len(expected_leaves)}"
        )
    if len(got_leaves) != len(expected_leaves):
        return Comparison(
            False,
            "structure",
            f"forward returned {len(got_leaves)} outputs, the reference returns {len(expected_leaves)}",
        )
    stats: dict = {"max_abs_err": 0.0, "max_rel_err": 0.0}
    for index, (g, e) in enumerate(zip(got_leaves, expected_leaves, strict=True)):
        lo = None if low_leaves is None else low_leaves[index]
        result = _compare_leaf(g, e, lo, f"output {index}", tf32=tf32, rtol=rtol, atol=atol)
        for key, value in result.stats.items():
            stats[key] = max(stats.get(key, 0.0), value)
        if not result.ok:
            result.stats = stats
            return result
    return Comparison(True, stats=stats)


def _compare_leaf(got: object, expected: object, low: object, where: str, **tol: object) -> Comparison:
    if not isinstance(expected, torch.Tensor):
        return _compare_scalar(got, expected, low, where, **tol)
    if not isinstance(got, torch.Tensor):
        return Comparison(False, "structure", f"{where}: expected a tensor, got {type(got).__name__}")
    target = low if isinstance(low, torch.Tensor) else expected
    if got.shape != target.shape or expected.shape != target.shape:
        return Comparison(False, "shape", f"{where}: shape {tuple(got.shape)}, expected {tuple(target.shape)}")
    if got.dtype != target.dtype:
        return Comparison(False, "dtype", f"{where}: dtype {got.dtype}, expected {target.dtype}")
    if got.numel() == 0:
        return Comparison(True)
    low_t = low if isinstance(low, torch.Tensor) else None
    if T.is_exact(got.dtype):
        return _compare_exact(got, expected, low_t, where)
    return _LeafComparison(got, expected, low_t, where, **tol).run()


# ---------------------------------------------------------------------------------------------------------- scalars


def _compare_scalar(got: object, expected: object, low: object, where: str, *, tf32, rtol, atol) -> Comparison:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(low, torch.Tensor) and low.numel() == 1:
        low = low.item()
    numbers = (bool, int, float)
    if (
        not isinstance(got, numbers)
        or not isinstance(expected, numbers)
        or isinstance(got, bool) != isinstance(expected, bool)
    ):
        if type(got) is not type(expected):
            return Comparison(
                False, "structure", f"{where}: expected {type(expected).__name__}, got {type(got).__name__}"
            )
        return Comparison(
            got == expected,
            "" if got == expected else "mismatch",
            "" if got == expected else f"{where}: {got!r} != expected {expected!r}",
        )
    if not isinstance(expected, float) and not isinstance(got, float):  # int/bool: exact (either reference)
        if got == expected or (low is not None and got == low):
            return Comparison(True)
        return Comparison(False, "mismatch", f"{where}: {got!r} != expected {expected!r}")
    g, e = float(got), float(expected)
    lo = e if not isinstance(low, numbers) else float(low)
    if not math.isfinite(lo) or not math.isfinite(g):
        same = (math.isnan(g) and math.isnan(lo)) or g == lo
        return Comparison(
            same,
            "" if same else "mismatch",
            "" if same else f"{where}: {got!r}, expected {low if low is not None else expected!r}",
        )
    a = T.allowance_for(torch.float32, have_low=low is not None, tf32=tf32, rtol=rtol, atol=atol)
    ref_err = abs(lo - e) if math.isfinite(e) else 0.0
    allowed = a.ref_factor * ref_err + a.rtol * abs(e) + (a.atol_abs or 0.0)
    err = abs(g - e) if math.isfinite(e) else 0.0
    stats = {"max_abs_err": err, "max_rel_err": err / abs(e) if e else 0.0}
    if err <= allowed:
        return Comparison(True, stats=stats)
    return Comparison(
        False,
        "mismatch",
        f"{where}: {got!r}, expected {expected!r} (error {err:.3g}, allowed {allowed:.3g})",
        stats=stats,
    )


# ---------------------------------------------------------------------------------------------------------- exact


def _compare_exact(got: torch.Tensor, expected: torch.Tensor, low: torch.Tensor | None, where: str) -> Comparison:
    g, e = got.reshape(-1), expected.reshape(-1)
    lo = None if low is None else low.reshape(-1)
    count, samples = 0, []
    for start in range(0, g.numel(), CHUNK):
        gc, ec = g[start : start + CHUNK], e[start : start + CHUNK].to(g.device)
        bad = gc != ec
        if lo is not None:
            bad &= gc != lo[start : start + CHUNK].to(g.device)
        n = int(bad.sum())
        if n:
            count += n
            for j in bad.nonzero().flatten()[: SAMPLES - len(samples)].tolist():
                samples.append(f"  at {_unravel(start + j, got.shape)}: got {gc[j].item()}, expected {ec[j].item()}")
    if not count:
        return Comparison(True)
    message = (
        f"{where}: {count} of {got.numel()} {str(got.dtype).removeprefix('torch.')} elements differ (compared exactly)"
    )
    return Comparison(False, "mismatch", message, "first mismatches:\n" + "\n".join(samples))


# ---------------------------------------------------------------------------------------------------------- floats


class _LeafComparison:
    """Two passes over one floating leaf: global sums (norms, RMS, non-finite check), then the element-wise test."""

    def __init__(self, got, expected, low, where, *, tf32, rtol, atol) -> None:  # noqa: ANN001
        self.shape, self.where, self.n = got.shape, where, got.numel()
        self.device = expected.device
        self.g, self.e = got.reshape(-1), expected.reshape(-1)
        self.l = None if low is None else low.reshape(-1)
        self.dtype = got.dtype
        self.a = T.allowance_for(got.dtype, have_low=low is not None, tf32=tf32, rtol=rtol, atol=atol)
        self.cols = self.shape[-1] if len(self.shape) >= 2 and 0 < self.shape[-1] <= CHUNK // 4 else self.n
        self._cache: dict = {}

    # chunks: whole rows of the last dim when rows are short, else plain element ranges
    def _ranges(self) -> list[tuple[int, int]]:
        step = max(self.cols, (CHUNK // self.cols) * self.cols) if self.cols < self.n else CHUNK
        return [(s, min(s + step, self.n)) for s in range(0, self.n, step)]

    def _load(self, start: int, stop: int):  # noqa: ANN202
        key = (start, stop)
        if key in self._cache:
            return self._cache[key]
        f64 = torch.complex128 if self.dtype.is_complex else torch.float64
        g = self.g[start:stop].to(self.device, f64)
        e = self.e[start:stop].to(self.device, f64)
        lo = e if self.l is None else self.l[start:stop].to(self.device, f64)
        out = (g, e, lo)
        if stop - start == self.n:
            self._cache[key] = out  # one chunk: load once for both passes
        return out

    def run(self) -> Comparison:
        sums = self._pass_sums()
        if sums["nonfinite_bad"]:
            return self._nonfinite_failure(sums)
        n = max(sums["count"], 1)
        ee, dd, rr = sums["ee"], sums["dd"], sums["ll_e"]
        self.s = math.sqrt(ee / n)
        self.rho = math.sqrt(rr / n)
        self.q = math.sqrt(rr / ee) if ee > 0 else 0.0
        err_norm = math.sqrt(dd / ee) if ee > 0 else 0.0  # an all-zero reference: the element test decides
        a = self.a
        self.atol = a.atol_abs if a.atol_abs is not None else a.atol_rms * self.s
        allowed_norm = a.norm_ref_factor * self.q + a.norm_floor
        if a.user_override and self.s > 0:
            allowed_norm = max(allowed_norm, a.rtol + self.atol / self.s)
        elem = self._pass_elements()
        stats = {
            "max_abs_err": sums["max_abs"],
            "max_rel_err": sums["max_rel"],
            "err_norm": err_norm,
            "ref_err_norm": self.q,
            "allowed_norm": allowed_norm,
            "max_err_ratio": elem["worst_ratio"],
            "norm_ratio": err_norm / allowed_norm,
        }
        self.sums, self.err_norm, self.allowed_norm = sums, err_norm, allowed_norm
        pattern = self._pattern()
        if elem["count"]:
            return self._element_failure(elem, stats, pattern)
        if ee > 0 and err_norm > allowed_norm:
            return self._norm_failure(stats, pattern)
        if pattern and pattern[0]:  # a constant or all-zero output where the reference is not
            message = f"{self.where}: {pattern[1]}"
            return Comparison(False, "mismatch", message, self._rule_line(), stats)
        return Comparison(True, stats=stats)

    # ---- pass 1
    def _pass_sums(self) -> dict:
        acc = dict.fromkeys(["ee", "dd", "ll_e", "ge", "gg", "se", "count", "zero_g", "nonzero_e"], 0.0)
        acc.update(max_abs=0.0, max_rel=0.0, nonfinite_bad=0, nf_samples=[], g_min=math.inf, g_max=-math.inf)
        acc["l_min"], acc["l_max"] = math.inf, -math.inf
        for start, stop in self._ranges():
            g, e, lo = self._load(start, stop)
            fin_e, fin_l, fin_g = torch.isfinite(e), torch.isfinite(lo), torch.isfinite(g)
            same = (torch.isnan(lo) & torch.isnan(g)) | (g == lo)
            bad_nf = torch.where(fin_l, ~fin_g, ~same)
            n_bad = int(bad_nf.sum())
            if n_bad:
                acc["nonfinite_bad"] += n_bad
                for j in bad_nf.nonzero().flatten()[: SAMPLES - len(acc["nf_samples"])].tolist():
                    acc["nf_samples"].append((start + j, g[j].item(), lo[j].item(), e[j].item()))
            both = fin_e & fin_l & fin_g
            zero = torch.zeros((), dtype=g.dtype, device=g.device)
            gz, ez, lz = torch.where(both, g, zero), torch.where(both, e, zero), torch.where(both, lo, zero)
            diff = (gz - ez).abs()
            eabs = ez.abs()
            acc["ee"] += float((eabs * eabs).sum())
            acc["dd"] += float((diff * diff).sum())
            rdiff = (lz - ez).abs()
            acc["ll_e"] += float((rdiff * rdiff).sum())
            acc["ge"] += float((gz * ez.conj()).real.sum()) if g.is_complex() else float((gz * ez).sum())
            acc["gg"] += float((gz.abs() ** 2).sum())
            acc["se"] += float(ez.real.sum())
            acc["count"] += float(both.sum())
            acc["zero_g"] += float((both & (g == 0) & (e != 0)).sum())
            acc["nonzero_e"] += float((both & (e != 0)).sum())
            if diff.numel():
                acc["max_abs"] = max(acc["max_abs"], float(diff.max()))
                rel = diff / eabs.clamp_min(1e-300)
                acc["max_rel"] = max(acc["max_rel"], float(rel.max()))
            if not g.is_complex():
                gf = g[fin_g]
                if gf.numel():
                    acc["g_min"], acc["g_max"] = min(acc["g_min"], float(gf.min())), max(acc["g_max"], float(gf.max()))
                lf = lo[fin_l]
                if lf.numel():
                    acc["l_min"], acc["l_max"] = min(acc["l_min"], float(lf.min())), max(acc["l_max"], float(lf.max()))
        return acc

    # ---- pass 2
    def _pass_elements(self) -> dict:
        a = self.a
        out = {"count": 0, "worst_ratio": 0.0, "worst": None, "samples": []}
        rr, cr = T.ROW_RADIUS, T.COL_RADIUS
        for start, stop in self._ranges():
            if a.ref_factor > 0:
                pad = rr * self.cols if self.cols < self.n else cr
                lo_start, hi_stop = max(0, start - pad), min(self.n, stop + pad)
                g_ext, e_ext, l_ext = self._load(lo_start, hi_stop)
                ref_err = torch.where(torch.isfinite(e_ext) & torch.isfinite(l_ext), (l_ext - e_ext).abs(), 0.0)
                env = self._envelope(ref_err, hi_stop - lo_start)[start - lo_start : stop - lo_start]
                g, e, lo = (t[start - lo_start : stop - lo_start] for t in (g_ext, e_ext, l_ext))
                eabs = e.abs()
                ref_term = torch.maximum(
                    a.ref_factor * torch.maximum(env, self.q * eabs), torch.full_like(env, a.rho_factor * self.rho)
                )
                allowed = ref_term + a.rtol * eabs + self.atol
            else:
                g, e, lo = self._load(start, stop)
                eabs = e.abs()
                allowed = a.rtol * eabs + self.atol
            both = torch.isfinite(e) & torch.isfinite(lo) & torch.isfinite(g)
            err = torch.where(both, (g - e).abs(), 0.0)
            bad = err > allowed
            ratio = err / allowed.clamp_min(1e-300)
            j = int(ratio.argmax())
            r = float(ratio[j])
            if r > out["worst_ratio"] or out["worst"] is None:
                out["worst_ratio"] = max(out["worst_ratio"], r)
                out["worst"] = (start + j, g[j].item(), e[j].item(), float(err[j]), float(allowed[j]), r)
            n_bad = int(bad.sum())
            if n_bad:
                out["count"] += n_bad
                for k in bad.nonzero().flatten()[: SAMPLES - len(out["samples"])].tolist():
                    out["samples"].append((start + k, g[k].item(), e[k].item(), float(err[k]), float(allowed[k])))
        return out

    def _envelope(self, ref_err: torch.Tensor, length: int) -> torch.Tensor:
        rr, cr = T.ROW_RADIUS, T.COL_RADIUS
        if self.cols < self.n:
            x = ref_err.view(1, 1, length // self.cols, self.cols)
            x = F.max_pool2d(x, (1, 2 * cr + 1), 1, (0, cr))
            x = F.max_pool2d(x, (2 * rr + 1, 1), 1, (rr, 0))
        else:
            x = F.max_pool1d(ref_err.view(1, 1, length), 2 * cr + 1, 1, cr)
        return x.reshape(-1)

    # ---- messages
    def _pattern(self) -> tuple[bool, str] | None:
        """A short description of a recognisable wrong output, and whether it alone is a reason to reject."""
        s, n = self.sums, max(self.sums["count"], 1)
        ee, gg = s["ee"], s["gg"]
        std_e = math.sqrt(max(ee / n - (s["se"] / n) ** 2, 0.0))
        if ee > 0 and math.sqrt(gg) < T.ZERO_NORM * math.sqrt(ee):
            kind = "all zeros" if gg == 0 else f"almost all zeros (RMS {math.sqrt(gg / n):.3g})"
            return True, f"the output is {kind} where the reference's RMS is {self.s:.3g}"
        if s["g_min"] == s["g_max"] and self.n > 1 and std_e > T.CONSTANT_STD * self.s:
            return True, (
                f"the output is constant ({s['g_min']:.6g} everywhere) where the reference varies "
                f"(std {std_e:.3g}, RMS {self.s:.3g})"
            )
        hints = []
        if s["nonzero_e"] and s["zero_g"] / s["nonzero_e"] > 0.01:
            hints.append(
                f"{100 * s['zero_g'] / s['nonzero_e']:.1f}% of the output is exactly 0 where the reference "
                "is not (elements never written?)"
            )
        if ee > 0:
            alpha = s["ge"] / ee
            resid = math.sqrt(max(gg - 2 * alpha * s["ge"] + alpha * alpha * ee, 0.0) / ee)
            if abs(alpha - 1) > self.allowed_norm and resid < 0.5 * self.err_norm:
                hints.append(
                    f"the output is close to {alpha:.5g} x the reference (a scale error: missing or "
                    "extra terms, a wrong normaliser?)"
                )
            hints.append(f"output RMS {math.sqrt(gg / n):.4g}, reference RMS {self.s:.4g}")
        return False, "; ".join(hints)

    def _rule_line(self) -> str:
        a = self.a
        return (
            f"allowed per element: max({a.ref_factor:.3g} x the {str(self.dtype).removeprefix('torch.')} reference's "
            f"own error nearby (or {self.q:.3g} x |expected| if larger), {a.rho_factor:g} x its RMS {self.rho:.3g}) + "
            f"{a.rtol:.3g} x |expected| + {self.atol:.3g}; "
            f"allowed relative error norm {self.allowed_norm:.3g}"
        )

    def _element_failure(self, elem: dict, stats: dict, pattern) -> Comparison:  # noqa: ANN001
        j, gv, ev, err, allowed, r = elem["worst"]
        message = (
            f"{self.where}: {elem['count']} of {self.n} elements differ from the reference beyond the allowed error; "
            f"worst at {_unravel(j, self.shape)}: got {gv:.6g}, expected {ev:.6g}, error {err:.3g} vs allowed "
            f"{allowed:.3g} ({r:.3g}x over)"
        )
        if pattern[0]:
            message += f"; {pattern[1]}"
        lines = [
            f"  at {_unravel(k, self.shape)}: got {g:.6g}, expected {e:.6g} (error {d:.3g}, allowed {al:.3g})"
            for k, g, e, d, al in elem["samples"]
        ]
        evidence = "first mismatches:\n" + "\n".join(lines)
        evidence += (
            f"\nrelative error norm ||out - ref||/||ref|| = {self.err_norm:.3g} (allowed {self.allowed_norm:.3g})"
        )
        if pattern[1] and not pattern[0]:
            evidence += f"\n{pattern[1]}"
        evidence += "\n" + self._rule_line()
        return Comparison(False, "mismatch", message, evidence, stats)

    def _norm_failure(self, stats: dict, pattern) -> Comparison:  # noqa: ANN001
        a = self.a
        message = (
            f"{self.where}: relative error norm ||out - ref|| / ||ref|| = {self.err_norm:.3g} exceeds the allowed "
            f"{self.allowed_norm:.3g} ({self.err_norm / self.allowed_norm:.3g}x over; the "
            f"{str(self.dtype).removeprefix('torch.')} reference's own is {self.q:.3g}): every element is within its "
            f"own allowance, but the error is systematic"
        )
        if pattern[1]:
            message += f" ({pattern[1]})"
        evidence = (
            f"allowed norm = {a.norm_ref_factor:g} x {self.q:.3g} (reference's error) + {a.norm_floor:.3g} "
            f"(dtype roundoff terms); worst element used {stats['max_err_ratio']:.3g} of its allowance\n"
            + self._rule_line()
        )
        return Comparison(False, "mismatch", message, evidence, stats)

    def _nonfinite_failure(self, sums: dict) -> Comparison:
        lines = [
            f"  at {_unravel(j, self.shape)}: got {g:.6g}, reference in {str(self.dtype).removeprefix('torch.')} "
            f"{lo:.6g} (high precision {e:.6g})"
            for j, g, lo, e in sums["nf_samples"]
        ]
        message = (
            f"{self.where}: {sums['nonfinite_bad']} of {self.n} elements are NaN/Inf where the reference is finite, or "
            f"differ from the reference's NaN/Inf (NaN/Inf must appear exactly where PyTorch's reference in "
            f"{str(self.dtype).removeprefix('torch.')} has them; an overflow or a division by zero?)"
        )
        stats = {"nonfinite_mismatches": float(sums["nonfinite_bad"])}
        return Comparison(False, "mismatch", message, "first mismatches:\n" + "\n".join(lines), stats)


def _unravel(flat_index: int, shape: torch.Size) -> tuple[int, ...]:
    index = []
    for dim in reversed(shape):
        index.append(flat_index % dim)
        flat_index //= dim
    return tuple(reversed(index))
