"""The judge's timing figure is one mean per message, never a median over the calls the child reports: a child that
keeps each message's sum but moves it onto one call gains nothing (an outside attacker's class, our own candidate)."""

from __future__ import annotations

from pathlib import Path

from kernelagent.bench.timing import time_candidates
from kernelagent.verify.verifier import prepare_reference, release

CORPUS = Path(__file__).resolve().parent / "corpus"
ATTACKS = CORPUS / "timing_attacks"


def test_piling_a_message_onto_one_call_is_timed_at_its_honest_cost(tmp_path):
    prepared = prepare_reference(reference_source=(CORPUS / "problems" / "elementwise_add.py").read_text(),
                                 harness_dir=tmp_path / "harness", device="cpu", draws=1, sizes={}, precision="spec",
                                 timeout_s=120, cache_dir=tmp_path / "cache")
    harness = {**prepared, "device": "cuda", "_test_clock": "host"}
    honest, skewed = ((ATTACKS / name).read_text() for name in ("honest_add.py", "skewed_samples.py"))
    results = time_candidates([honest, skewed], harness, tmp_path / "timing", labels=["honest", "skewed"],
                              static_policy=False, rounds=3)
    release(prepared)
    assert all("ms" in r for r in results), results
    # A median over calls would put the skewed one near 1% of the honest figure; per-message means keep it within
    # the host clock's noise of it (a 3x margin on a loaded 2-core machine).
    assert results[1]["ms"] > results[0]["ms"] / 3, results
