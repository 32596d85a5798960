"""Elementwise tolerances by output dtype: |out - ref| <= atol * scale + rtol * |ref| for every element.

`scale` is max(1, rms(ref)), so that atol follows the magnitude of the result rather than assuming unit data.
fp32 is tight (fp32 accumulation-order differences on K~4096 reductions stay under 1e-5 relative); half types
follow their machine epsilon (fp16 ~1e-3, bf16 ~8e-3) times a small factor for accumulation; tf32 applies when
the user allows TF32 matmuls for a float32 problem (10-bit mantissa, ~1e-3 per product).
"""

from __future__ import annotations

import torch

TOLERANCES: dict[str, tuple[float, float]] = {  # dtype -> (rtol, atol)
    "float64": (1e-7, 1e-7),
    "float32": (1e-4, 1e-4),
    "tf32": (5e-3, 5e-3),
    "float16": (1e-2, 1e-2),
    "bfloat16": (2e-2, 2e-2),
}
EXACT_KINDS = ("int", "uint", "bool")


def tolerance_for(
    dtype: torch.dtype, *, tf32: bool = False, rtol: float | None = None, atol: float | None = None
) -> tuple[float, float]:
    """(rtol, atol) for an output dtype; integer and bool outputs are compared exactly unless overridden."""
    name = str(dtype).removeprefix("torch.")
    if tf32 and name == "float32":
        name = "tf32"
    if name.startswith(EXACT_KINDS):
        base = (0.0, 0.0)
    else:
        base = TOLERANCES.get(name, TOLERANCES["float32"])
    return (base[0] if rtol is None else rtol, base[1] if atol is None else atol)
