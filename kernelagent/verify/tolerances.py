"""How much a candidate's output may differ from the reference, and why (measured, not guessed).

Notation, per output tensor: `e` the reference computed in HIGH precision (float64 parameters and inputs), `l` the
same reference as PyTorch computes it in the problem's own dtype, `g` the candidate's output (same dtype as `l`).
`u` is the unit roundoff of the output dtype (finfo.eps / 2; for a float32 problem with TF32 allowed, 2**-11),
`v` the unit roundoff of the accumulator a correct kernel uses (float32 for float32 and narrower dtypes, float64 for
float64). The reference's own error tells what the dtype earns on this problem:
    q   = ||l - e|| / ||e||                the reference's relative error norm,
    rho = rms(l - e)                       its error's RMS,
    env = max of |l - e| over a (2*ROW_RADIUS+1) x (2*COL_RADIUS+1) window of the last two dims around each element,
    s   = rms(e)                           the reference's own magnitude.

1. Non-finite values: NaN/Inf exactly where `l` has them (Inf with the same sign): overflow in the problem's dtype is
   what PyTorch does, so a candidate must reproduce it, and must not produce it where `l` is finite.
2. Element-wise, for every finite element:
       |g - e| <= REF_FACTOR * max(env, q * |e|, rho) + rtol * |e| + atol
   with rtol = RTOL_U * u + ACC_V * v and atol = (ATOL_U * u + ACC_V * v) * s. The absolute term scales with the
   reference's RMS and is a few roundoffs of it: no floor lets zeros or small-magnitude garbage through.
   `--rtol X` replaces rtol; `--atol Y` replaces atol (then an absolute value, in the output's units). The
   reference-error term stays: it is what the dtype earns where the reference itself is inaccurate.
3. Norm-wise: ||g - e|| / ||e|| <= NORM_REF_FACTOR * q + NORM_U * u + NORM_ACC_V * v. This catches systematic
   errors too small for any one element (a bf16 matvec that drops 2.7% of K). With --rtol/--atol it is loosened to
   what the element-wise overrides imply, rtol + atol / s, when that is larger.
4. A constant output where the reference varies (std(e) > 1% of rms(e)) and an (almost) all-zero output
   (||g|| < 1e-3 ||e||) are rejected with their own message. Integer and bool outputs must equal `e` or `l` exactly.

Without `l` (old two-argument callers, and the reference's determinism check), `e` is in the output dtype itself,
the reference's error is unknown, and only the dtype terms apply, with the larger NO_LOW_* multiples (two roundings,
the candidate's and the reference's, instead of one).

Measurements (tests/test_compare.py::test_measure_margins prints them; CPU, torch 2.13, seeds 0-2, sizes up to
1024x8192): worst honest ratio = max over variants of max(element err / allowance, err_norm / allowed_norm);
best attack ratio = the smallest such ratio among attacks (an attack fails when its ratio > 1).
    honest (worst ratio, must be < 1)              attacks (best ratio, must be > 1)
    tf32 matmul, inputs truncated      0.397       bf16 matvec drops last 2.7% of K (rand)   1.94 (norm test)
    tf32 matmul, inputs rounded        0.279       the same, randn data                      13.1
    bf16/fp16 matvec, matmul, fp32 acc 0.15-0.18   fp32 output off by a 1e-3 relative bias  78
    bf16/fp16 linear+GELU, rounded     0.17-0.18   garbage ~1e-5 in the small half (fp32)   102
      once before bias (unfused)                   softmax dividing by N, not the row sum   4.3e4
    fp16/bf16 softmax (exp2), layernorm  0.15      constant output                          7.8e4
    fp32 exp(x) as exp2(x*log2e)       0.137       79% of the output left at 0              1.2e5
    fp32 sum / matmul, K <= 8192, K    0.043       noise ~1e-5 where the reference is ~1e-5 2.3e6
      loop in blocks of 16-32                      fp16 exp without max subtraction: Inf    (non-finite)
    fp32 softmax, layernorm            0.02
Why these values: fp32 accumulation in K order (a Triton K loop) measured 13x the RMS error of MKL's fp32 matmul
at K=8192 in the worst element (16-wide blocks; a fully sequential FMA chain is ~3x worse still), hence
REF_FACTOR + ACC_REF_FACTOR = 64 for fp32 (honest fp32 ratio 0.04 leaves room for that chain and larger K); on an
H200 cuBLAS's own fp32 error was 19u (vs 4.6u for MKL), so the reference-relative terms grow with it. A half-type
kernel's error is dominated by its final rounding, the same as the reference's, so REF_FACTOR = 4 and NORM_U = 2
suffice (ratio 0.18) while the 2.7% drop, 6.9u of bf16, still fails by 1.9x. TF32 tensor cores may truncate
their inputs (a biased error: 0.79 of a 2u norm allowance), hence TF32_NORM_U = 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

REF_FACTOR = 4.0  # element: multiple of the reference's own error (env, q|e|; rho alone gets only this)
ACC_REF_FACTOR = 60.0  # element: extra multiple of env and q|e|, times v/u (1 for fp32, 2**-13 for fp16, 2**-16 bf16)
NORM_REF_FACTOR = 2.0  # norm: multiple of the reference's relative error norm q
NORM_ACC_REF_FACTOR = 30.0  # norm: extra multiple of q, times v/u
RTOL_U = 4.0  # element, relative: output-dtype roundings (the candidate's own rounding plus intermediates)
ATOL_U = 4.0  # element, absolute (times rms(e)): roundings of intermediates that cancel
ACC_V = 256.0  # element, relative: a different accumulation order where the reference is nearly exact
ACC_ATOL_V = 16.0  # element, absolute (times rms(e)): the same, near cancellation
NORM_U = 2.0  # norm: output-dtype roundings
NORM_ACC_V = 64.0  # norm: accumulation order
NO_LOW_RTOL_U = 8.0
NO_LOW_ATOL_U = 8.0
NO_LOW_NORM_U = 3.0
TF32_U = 2.0**-11  # TF32 keeps 10 explicit mantissa bits
TF32_RTOL_U, TF32_ATOL_U, TF32_NORM_U = 8.0, 8.0, 4.0  # tensor cores may truncate inputs to TF32 (biased error)
ROW_RADIUS, COL_RADIUS = 2, 8
CONSTANT_STD = 1e-2  # a constant output is rejected when std(e) > CONSTANT_STD * rms(e)
ZERO_NORM = 1e-3  # an output with ||g|| < ZERO_NORM * ||e|| is rejected as all zeros
EXACT_KINDS = ("int", "uint", "bool")


@dataclass(frozen=True)
class Allowance:
    """The constants of the rule for one floating output, already in the output's units except `atol_rms`."""

    u: float  # output dtype's unit roundoff (TF32's for fp32 problems with TF32 allowed)
    ref_factor: float  # multiplies env and q|e|
    rho_factor: float  # multiplies rho
    norm_ref_factor: float
    rtol: float
    atol_rms: float  # multiplied by rms(e) unless atol_abs is given
    atol_abs: float | None  # the user's --atol, in output units
    norm_floor: float
    user_override: bool


def unit_roundoff(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) / 2 if dtype.is_floating_point or dtype.is_complex else 0.0


def is_exact(dtype: torch.dtype) -> bool:
    return str(dtype).removeprefix("torch.").startswith(EXACT_KINDS)


def allowance_for(
    dtype: torch.dtype, *, have_low: bool, tf32: bool = False, rtol: float | None = None, atol: float | None = None
) -> Allowance:
    """The rule's constants for a floating output of `dtype` (the problem's dtype, not the high reference's)."""
    if dtype.is_complex:
        dtype = torch.float64 if dtype == torch.complex128 else torch.float32
    u = unit_roundoff(dtype)
    if tf32 and dtype == torch.float32:
        u = TF32_U
    v = unit_roundoff(torch.float64 if dtype == torch.float64 else torch.float32)
    rtol_u, atol_u, norm_u = (RTOL_U, ATOL_U, NORM_U) if have_low else (NO_LOW_RTOL_U, NO_LOW_ATOL_U, NO_LOW_NORM_U)
    if tf32 and dtype == torch.float32:
        rtol_u, atol_u, norm_u = TF32_RTOL_U, TF32_ATOL_U, TF32_NORM_U
    return Allowance(
        u=u,
        ref_factor=REF_FACTOR + ACC_REF_FACTOR * v / u if have_low else 0.0,
        rho_factor=REF_FACTOR if have_low else 0.0,
        norm_ref_factor=NORM_REF_FACTOR + NORM_ACC_REF_FACTOR * v / u if have_low else 0.0,
        rtol=rtol_u * u + ACC_V * v if rtol is None else float(rtol),
        atol_rms=atol_u * u + ACC_ATOL_V * v,
        atol_abs=None if atol is None else float(atol),
        norm_floor=norm_u * u + NORM_ACC_V * v,
        user_override=rtol is not None or atol is not None,
    )
