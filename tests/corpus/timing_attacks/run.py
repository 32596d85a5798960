"""Runs the timing attack corpus through the real judge: tests/test_timing_attacks.py on CPU (host clock) and
benchmarks/timing_attacks.py on a GPU share this one function."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "manifest.json").read_text())


def outcome_class(result: dict) -> str:
    """'timed' for a result with a median, the judge's rejection class, or 'error'."""
    if "ms" in result:
        return "timed"
    return str(result.get("rejected") or "error")


def run_corpus(
    harness: dict,
    workdir: Path,
    device: str,
    *,
    ceilings: dict | None = None,
    only: list[str] | None = None,
    timeout_s: float = 600,
) -> list[dict]:
    """Every attack for this device, timed without the static policy (the judge is what is under test), in as few
    children as is fair: attacks that poison the process unseen ("alone") get a child each."""
    from kernelagent.bench.timing import time_candidates

    entries = [e for e in MANIFEST["attacks"] if device in e["devices"] and (not only or e["file"] in only)]
    groups = [[e] for e in entries if e.get("alone")] + [[e for e in entries if not e.get("alone")]]
    rows = []
    for k, group in enumerate(g for g in groups if g):
        codes = [(HERE / e["file"]).read_text() for e in group]
        results = time_candidates(
            codes,
            harness,
            Path(workdir) / f"group{k}",
            labels=[e["file"] for e in group],
            static_policy=False,
            ceilings=ceilings,
            timeout_s=timeout_s,
        )
        for entry, result in zip(group, results, strict=True):
            got = outcome_class(result)
            rows.append({**entry, "got": got, "caught": got in entry["expected"], "result": result})
    return rows
