"""Timing attacks through the real judge on CPU (host clock, Triton interpreter): every timed call is checked, the
judge's clock bounds the claims, and what the child reports about itself can only fail the candidate."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelagent.verify.loading import load_module
from kernelagent.verify.verifier import prepare_reference

CORPUS = Path(__file__).resolve().parent / "corpus"
# Loaded by path under its own name: tests/escape has a run.py too.
_runner = load_module(CORPUS / "timing_attacks" / "run.py", "timing_attacks_run")
MANIFEST, outcome_class, run_corpus = _runner.MANIFEST, _runner.outcome_class, _runner.run_corpus


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    folder = tmp_path_factory.mktemp("timing-attacks")
    prepared = prepare_reference(
        reference_source=(CORPUS / MANIFEST["problem"]).read_text(),
        harness_dir=folder / "harness",
        device="cpu",
        draws=1,
        sizes={},
        precision="spec",
        timeout_s=120,
        cache_dir=folder / "cache",
    )
    return {**prepared, "device": "cuda", "_test_clock": "host"}


@pytest.fixture(scope="module")
def rows(harness, tmp_path_factory):
    return run_corpus(harness, tmp_path_factory.mktemp("timing-attack-runs"), "cpu")


def test_every_cpu_attack_is_caught_and_every_control_timed(rows):
    by_file = {row["file"]: row for row in rows}
    assert set(by_file) == {e["file"] for e in MANIFEST["attacks"] if "cpu" in e["devices"]}
    missed = {f: (r["got"], str(r["result"].get("error"))[:400]) for f, r in by_file.items() if not r["caught"]}
    assert not missed
    for name in ("content_cache_sampled.py", "skip_after_3.py", "deferred_one_call_late.py"):
        evidence = by_file[name]["result"]["evidence"]
        assert "comparison" in evidence and evidence["checked_calls"] >= 1  # the judge's own comparison says so


def test_a_silenced_harness_clock_is_caught_by_the_judges_clock(rows):
    """The attack replaces the child's clock and its tamper check: nothing in the child reports it."""
    (row,) = [r for r in rows if r["file"] == "patched_runner_clock.py"]
    evidence = row["result"]["evidence"]
    assert row["got"] == "timing_inconsistent"
    assert evidence["judge_wall_ms_per_call"] > 10 * evidence["claimed_ms_per_call"]


def test_honest_results_carry_the_judges_figures(rows):
    (row,) = [r for r in rows if r["file"] == "honest_add.py"]
    result = row["result"]
    assert result["clock"] == "host" and result["checked_calls"] > result["reps"] >= 8
    assert len(result["samples_ms"]) == result["messages"] and len(result["rounds_ms"]) == 1
    # the judge's wall per call bounds the claim from above, within the allowance
    check = result["host_check"]
    assert check["claimed_ms_per_call"] <= check["judge_wall_ms_per_call"]


def test_rounds_interleave_and_a_floor_above_the_claim_rejects(harness, tmp_path):
    """rounds=3: one median per round. Ceilings so low that the floor is far above any real time: rejected as
    below_physical_floor (floor_on_host makes the judge apply it to host-clock figures, for this test only)."""
    from kernelagent.bench.timing import time_candidates

    code = (CORPUS / "timing_attacks" / "honest_add.py").read_text()
    timed = time_candidates([code, code], harness, tmp_path / "rounds", rounds=3, labels=["a", "b"])
    assert all("rounds_ms" in r for r in timed), timed
    assert all(len(r["rounds_ms"]) == 3 and len(r["samples_ms"]) == r["messages"] for r in timed)
    slow = {"copy_gbps": 1e-6, "matmul_tflops": {"float32": 1.0}}
    (floored,) = time_candidates([code], {**harness, "_floor_on_host": True}, tmp_path / "floor", ceilings=slow)
    assert outcome_class(floored) == "below_physical_floor", floored
    assert floored["evidence"]["floor_ms"] > 1.0


def test_the_floor_counts_outputs_and_the_inputs_that_change_them():
    """Bytes only (a FLOP count is no lower bound: algebraic shortcuts are honest); an ignored input is left out."""
    import torch

    from kernelagent.bench.roofline import physical_floor_ms
    from kernelagent.verify.judge_timing import _traffic

    class UsesFirst(torch.nn.Module):
        def forward(self, a, b, n):
            return a * 2

    a, b = torch.randn(1000), torch.randn(500)
    facts = _traffic(UsesFirst(), [a, b, 3], [a * 2])
    assert facts["floor_bytes"] == 2 * 4000 and facts["draw_bytes"] == 4000 + 2000 + 4000
    assert physical_floor_ms(facts["floor_bytes"], {"copy_gbps": 8.0}) == pytest.approx(1e-3)
