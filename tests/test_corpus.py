"""Every adversarial candidate is rejected for the right reason, every honest one passes, through the real verifier;
and docs/corpus-cpu.md, the table we show users, is current."""

from __future__ import annotations

import re

from conftest import ROOT
from corpus_runner import render_table, run_corpus

TABLE = ROOT / "docs" / "corpus-cpu.md"


def table_rows(markdown: str) -> list[tuple[str, str, str]]:
    """(candidate, expected, got) of each row; the reason text and the timing line may vary between runs."""
    rows = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 4:
            rows.append((cells[0], cells[2], re.sub(r"\s*❌$", "", cells[3])))
    return rows


def test_corpus_has_no_false_pass_no_false_reject_and_every_reason_right(tmp_path):
    rows = run_corpus("cpu", tmp_path)

    false_passes = [r["candidate"] for r in rows if r["expected"] == "reject" and r["verdict"]["passed"]]
    false_rejects = [
        (r["candidate"], r["verdict"]["reason"]) for r in rows if r["expected"] == "pass" and not r["verdict"]["passed"]
    ]
    wrong_reasons = [(r["candidate"], r["reason"], r["got"]) for r in rows if not r["ok"]]
    assert false_passes == [] and false_rejects == [] and wrong_reasons == []
    assert sum(r["expected"] == "pass" for r in rows) >= 12 and sum(r["expected"] == "reject" for r in rows) >= 60
    assert sum(r.get("bypass_policy", False) for r in rows) >= 20  # the judge attacked with the policy out of the way

    recorded = table_rows(TABLE.read_text())
    assert recorded == table_rows(render_table(rows, "cpu", 0)), (
        "docs/corpus-cpu.md is stale: run `python tests/corpus_runner.py --out docs/corpus-cpu.md`"
    )
