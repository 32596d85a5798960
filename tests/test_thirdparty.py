"""Published Triton (tests/thirdparty): the policy accepts every kernel, and the verifier passes them on CPU
(or names an interpreter limit) and rejects the wrong variants; docs/thirdparty-cpu.md is current."""

from __future__ import annotations

import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "thirdparty"))
import build  # noqa: E402

from kernelagent.verify.policy import check_policy  # noqa: E402

ENTRIES = build.manifest()
pytestmark = pytest.mark.skipif(bool(build.check_versions()), reason="pinned third-party packages not installed")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["name"])
def test_policy_accepts_published_kernels(entry):
    violations = check_policy(build.candidate_source(entry))
    expected = entry["reason"] or ""
    if expected.startswith("policy_violation:"):
        assert expected.split(":", 1)[1] in {v.rule for v in violations}
    else:
        assert violations == [], violations


def test_corpus_verdicts_on_cpu_and_table_is_current(tmp_path):
    rows = build.run("cpu", tmp_path)
    assert [(r["name"], r["got"]) for r in rows if not r["ok"]] == []
    assert len({r["package"] for r in rows}) >= 3
    recorded = (ROOT / "docs" / "thirdparty-cpu.md").read_text()
    for r in rows:
        assert f"| `{r['name']}` |" in recorded and f"| {r['got']} |" in recorded.split(f"| `{r['name']}` |")[1]
