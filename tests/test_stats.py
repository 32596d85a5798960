"""bench/stats.py on synthetic timings from known distributions: intervals cover the true median at the rate they
state, the comparison rarely accepts a kernel against itself and finds a real gain, ties go to the earlier kernel,
and code identity ignores comments, docstrings and layout."""

from __future__ import annotations

import math
import random

import pytest

from kernelagent.bench.stats import clears, estimate, median_interval, normalised, pick, same_as_any

TRIALS = 1500
# (name, draw(rng) -> one value, true median)
DISTRIBUTIONS = [
    ("lognormal", lambda rng: rng.lognormvariate(math.log(0.01), 0.3), 0.01),
    ("exponential", lambda rng: 0.008 + rng.expovariate(1 / 0.002), 0.008 + 0.002 * math.log(2)),
    ("uniform", lambda rng: rng.uniform(1.0, 1.2), 1.1),
]


def _coverage(draw, truth: float, n: int, seed: int, build) -> tuple[float, float]:  # noqa: ANN001
    """(empirical coverage of `truth`, stated level) over TRIALS intervals built from n draws each."""
    rng = random.Random(seed)
    hits, level = 0, None
    for _ in range(TRIALS):
        interval = build([draw(rng) for _ in range(n)])
        level = interval[2]
        hits += interval[0] <= truth <= interval[1]
    return hits / TRIALS, level


@pytest.mark.parametrize("name, draw, truth", DISTRIBUTIONS, ids=[d[0] for d in DISTRIBUTIONS])
@pytest.mark.parametrize("n", [5, 7, 10, 25])
def test_round_median_intervals_cover_the_median_at_the_stated_rate(name, draw, truth, n):
    def build(values):  # noqa: ANN001, ANN202
        found = median_interval(values)
        return found["low"], found["high"], found["level"]

    seen, level = _coverage(draw, truth, n, seed=n, build=build)
    se = math.sqrt(level * (1 - level) / TRIALS)
    assert abs(seen - level) < 4 * se + 1e-9, f"{name} n={n}: covered {seen:.3f}, stated {level:.3f}"
    assert level >= (0.9375 if n == 5 else 0.95)  # [min, max] of 5 is the best 5 points can do


def test_block_medians_of_one_series_cover_the_median():
    """A single round's per-call samples: block medians (odd block size, so their median is the true median)."""
    name, draw, truth = DISTRIBUTIONS[0]

    def build(values):  # noqa: ANN001, ANN202
        found = estimate({"ms": 0.0, "samples_ms": values})
        assert found["method"].startswith("median of 10 block medians")
        return found["low_ms"], found["high_ms"], found["level"]

    seen, level = _coverage(draw, truth, 10 * 21, seed=3, build=build)
    assert abs(seen - level) < 4 * math.sqrt(level * (1 - level) / TRIALS)


def test_no_samples_no_interval_and_no_decision():
    bare = {"ms": 1.0}
    assert estimate(bare) == {"median_ms": 1.0, "interval": None,
                              "why": "no interval: the timing gave no per-round or per-call samples"}
    assert median_interval([1.0, 2.0, 3.0, 4.0]) is None
    assert not clears({"ms": 0.1}, bare)["clears"]  # ten times lower, yet nothing to tell it from noise
    # With the per-call spread only, a clear separation still counts, and says it is no interval.
    band = clears({"ms": 0.1, "p20_ms": 0.09, "p80_ms": 0.11}, {"ms": 1.0, "p20_ms": 0.9, "p80_ms": 1.1})
    assert band["clears"] and band["how"] == "p20-p80 band" and "no interval" in band["why"]


def _interleaved(rng: random.Random, ms: float, drift: list[float], noise: float) -> dict:
    rounds = [ms * d * rng.lognormvariate(0, noise) for d in drift]
    return {"ms": sorted(rounds)[len(rounds) // 2], "rounds_ms": rounds}


def test_a_kernel_rarely_clears_itself_and_a_real_gain_clears():
    """Interleaved rounds share a drift (clocks, neighbours); each round's own noise 3%. The same kernel clears itself
    at most at the one-sided error rate (1 - level) / 2; a true 10% gain clears nearly always; a 1% one rarely.
    Per-round noise is 3% (per-round medians of one process; 5% would cost a 10% gain a third of its chances)."""
    rng = random.Random(11)
    outcomes = {"same": 0, "gain10": 0, "gain1": 0}
    trials = 600
    for _ in range(trials):
        drift = [rng.uniform(0.8, 1.25) for _ in range(7)]
        holder = _interleaved(rng, 1.0, drift, 0.03)
        outcomes["same"] += clears(_interleaved(rng, 1.0, drift, 0.03), holder)["clears"]
        outcomes["gain10"] += clears(_interleaved(rng, 0.9, drift, 0.03), holder)["clears"]
        outcomes["gain1"] += clears(_interleaved(rng, 0.99, drift, 0.03), holder, margin=0.02)["clears"]
    level = clears(_interleaved(rng, 1.0, [1.0] * 7, 0.03), holder)["level"]
    allowed = (1 - level) / 2
    assert outcomes["same"] / trials <= allowed + 3 * math.sqrt(allowed / trials)
    assert outcomes["gain10"] / trials > 0.9
    assert outcomes["gain1"] / trials < 0.02  # below the required margin: almost never kept


def test_unpaired_intervals_must_not_overlap():
    low = {"ms": 1.0, "rounds_ms": [0.9, 0.95, 1.0, 1.05, 1.1]}
    high = {"ms": 2.0, "rounds_ms": [1.9, 1.95, 2.0, 2.05, 2.1, 2.2]}  # different lengths: not one paired call
    assert clears(low, high) == clears(dict(low), dict(high))  # deterministic
    assert clears(low, high)["clears"] and clears(low, high)["how"] == "intervals"
    near = {"ms": 1.1, "rounds_ms": [1.05, 1.08, 1.1, 1.12, 1.15, 1.2]}
    assert not clears(low, near)["clears"]


def test_ties_go_to_the_earlier_kernel_never_the_luckiest_sample():
    rounds = [1.00, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97]
    seed = {"ms": 1.0, "rounds_ms": rounds}
    lucky = {"ms": 0.99, "rounds_ms": [r * 0.99 + (0.03 if i % 2 else -0.03) for i, r in enumerate(rounds)]}
    faster = {"ms": 0.7, "rounds_ms": [r * 0.7 for r in rounds]}
    assert pick([seed, lucky]) == 0
    assert pick([seed, lucky, faster]) == 2
    assert pick([{"error": "x"}, seed]) == 1 and pick([{"error": "x"}]) is None


def test_identity_ignores_comments_docstrings_and_layout():
    seed = 'import torch\n\n\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return x * 2\n'
    dressed = ('"""Optimised."""\nimport torch\n# faster now\n\nclass ModelNew(torch.nn.Module):\n'
               '    """Doubles."""\n\n    def forward(self, x):  # hot path\n\n        return (x *\n 2)\n')
    changed = seed.replace("x * 2", "x * 3")
    assert normalised(seed) == normalised(dressed)
    assert normalised(seed) != normalised(changed)
    assert same_as_any(dressed, [changed, seed]) == 1 and same_as_any(changed, [seed, dressed]) is None
    broken = "def f(x:\n    pass  # comment\n"
    assert normalised(broken) == normalised("def f(x:\n\n    pass\n")  # unparsable: its token stream
    assert normalised(broken) != normalised("def f(y:\n    pass\n")


def test_rounds_from_different_calls_are_never_paired():
    rounds = [1.0, 1.1, 0.9, 1.2, 0.8, 1.05, 0.95]
    ours = {"ms": 0.9, "rounds_ms": [r * 0.9 for r in rounds], "batch": "timing/a"}
    theirs = {"ms": 1.0, "rounds_ms": rounds, "batch": "timing/b"}
    assert clears(ours, theirs)["how"] == "intervals" and not clears(ours, theirs)["clears"]
    assert clears(ours, {**theirs, "batch": "timing/a"})["how"] == "paired"
