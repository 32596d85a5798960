"""Timing figures an outside attacker bent, with our own candidates of each class: the judge's figure is one mean per
message, never a median over the calls the child reports (a child that keeps each message's sum but moves it onto
one call gains nothing), and each candidate is timed in a process of its own (one cannot reach its rivals)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelagent.bench.timing import time_candidates
from kernelagent.verify.verifier import prepare_reference, release

CORPUS = Path(__file__).resolve().parent / "corpus"
ATTACKS = CORPUS / "timing_attacks"


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    folder = tmp_path_factory.mktemp("statistic")
    prepared = prepare_reference(reference_source=(CORPUS / "problems" / "elementwise_add.py").read_text(),
                                 harness_dir=folder / "harness", device="cpu", draws=1, sizes={}, precision="spec",
                                 timeout_s=120, cache_dir=folder / "cache")
    yield {**prepared, "device": "cuda", "_test_clock": "host"}
    release(prepared)


def _timed(harness, folder, *names):
    codes = [(ATTACKS / name).read_text() for name in names]
    return time_candidates(codes, harness, folder, labels=list(names), static_policy=False, rounds=2)


def test_piling_a_message_onto_one_call_is_never_timed_below_its_honest_cost(harness, tmp_path):
    honest, skewed = _timed(harness, tmp_path / "timing", "honest_add.py", "skewed_samples.py")
    assert "ms" in honest, honest
    # Refused (it reaches the harness's frames through ctypes) or timed: a median over calls would have put it near
    # 1% of the honest figure; per-message means keep it within the host clock's noise (a 3x margin on a loaded
    # 2-core machine).
    refused = "ms" not in skewed and "may not: ctypes" in skewed.get("error", "")
    assert refused or skewed["ms"] > honest["ms"] / 3, skewed


def test_the_figure_is_a_mean_per_message(harness, tmp_path):
    (result,) = _timed(harness, tmp_path / "timing", "honest_add.py")
    assert len(result["samples_ms"]) == result["messages"] < result["reps"], result


def test_a_candidate_cannot_reach_its_rivals(harness, tmp_path):
    # poison_rivals stops every kernel not its own from launching; timed in one shared process, the honest
    # candidates after it wrote nothing and were rejected as wrong.
    results = _timed(harness, tmp_path / "timing", "honest_add.py", "poison_rivals.py", "honest_add.py")
    assert all("ms" in r for r in results), results
