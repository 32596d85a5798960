"""Performance measurement: honest GPU timing, measured roofline ceilings, and launch-parameter autotuning."""

from kernelagent.bench.autotune import apply_label, autotune, tunable_parameters, variants
from kernelagent.bench.roofline import ceilings, roofline
from kernelagent.bench.timing import SKIPPED, speedups, time_candidate, time_candidates, time_reference

__all__ = [
    "SKIPPED",
    "apply_label",
    "autotune",
    "ceilings",
    "roofline",
    "speedups",
    "time_candidate",
    "time_candidates",
    "time_reference",
    "tunable_parameters",
    "variants",
]
