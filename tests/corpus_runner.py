"""Runs the adversarial + honest corpus through the real verifier and renders the results table.

    python tests/corpus_runner.py [--device cpu|cuda] [--out docs/corpus-cpu.md]

Used by tests/test_corpus.py (CPU) and by hand on the GPU machine. A row is right when an honest candidate passes
and an adversarial one is rejected for the reason the manifest names.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
sys.path.insert(0, str(ROOT))

from kernelagent.verify import verifier  # noqa: E402
from kernelagent.verify.verifier import prepare_reference, verify_reference_candidate  # noqa: E402

# Judged with the static policy bypassed: the judge and the sandbox must reject these on their own.
JUDGE_ALONE = "reject (judge alone)"
# Outputs of these are right: only the guard's evidence can reject them, so a numerical verdict would be luck.
GUARD_CLASSES = {"guard bypass"}


def manifest() -> list[dict]:
    """The policy corpus (honest + adversarial) and the attacks on the judge itself (judge_attacks/)."""
    attacks = json.loads((CORPUS / "judge_attacks" / "manifest.json").read_text())
    return json.loads((CORPUS / "manifest.json").read_text()) + [
        {**a, "expected": "reject", "reason": JUDGE_ALONE, "trick": f"[{a['class']}] {a['trick']}", "bypass_policy": True}
        for a in attacks
    ]


def observed_reason(verdict: dict) -> str | None:
    """The verdict in the manifest's vocabulary."""
    if verdict["passed"]:
        return None
    failure = verdict["failure_class"]
    if failure == "policy_violation":
        rule = verdict.get("rule") or ""
        if rule.startswith("runtime_torch_compute"):
            return "runtime_guard:torch_compute"
        return f"policy_violation:{rule}"
    if failure == "interface_error":
        reason = verdict["reason"]
        return "wrong_shape" if "shape" in reason else "wrong_dtype" if "dtype" in reason else "interface_error"
    return failure


def expected_reason(entry: dict, device: str) -> str | None:
    """Some tricks fail differently on a GPU (e.g. torch inside a jit body does not compile there)."""
    return entry.get(f"reason_{device}", entry["reason"])


def matches(entry: dict, verdict: dict) -> bool:
    if entry["expected"] == "pass":
        return bool(verdict["passed"])
    if verdict["passed"]:
        return False
    if entry.get("bypass_policy"):
        return entry["class"] not in GUARD_CLASSES or verdict["failure_class"] in ("policy_violation", "tamper")
    expected = entry["reason"]
    if expected.startswith("policy_violation:"):
        rules = verdict.get("details", {}).get("rules") or [verdict.get("rule")]
        return expected.split(":", 1)[1] in rules
    return observed_reason(verdict) == expected


def run_corpus(device: str, work: Path, timeout_s: float = 60.0, workers: int = 2) -> list[dict]:
    harnesses = {}
    for problem in sorted({e["problem"] for e in manifest()}):
        harnesses[problem] = prepare_reference(
            reference_source=(CORPUS / problem).read_text(),
            harness_dir=work / Path(problem).stem,
            device=device,
            draws=3,
            sizes={},
            precision="spec",
            seed=1234,
            timeout_s=300,
            cache_dir=work / "triton-cache",
        )

    def judge(index_entry: tuple[int, dict]) -> dict:
        index, entry = index_entry
        code = (CORPUS / entry["candidate"]).read_text()
        harness, workdir = harnesses[entry["problem"]], work / "candidates" / str(index)
        if entry.get("bypass_policy"):
            verdict = verifier.judge_without_policy(code, harness, workdir, timeout_s=timeout_s)
        else:
            verdict = verify_reference_candidate(code, harness, workdir, timeout_s=timeout_s)
        entry = {**entry, "reason": expected_reason(entry, device)}
        return {**entry, "verdict": verdict, "got": observed_reason(verdict) or "pass", "ok": matches(entry, verdict)}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(judge, enumerate(manifest())))


def render_table(rows: list[dict], device: str, seconds: float) -> str:
    false_pass = sum(1 for r in rows if r["expected"] == "reject" and r["verdict"]["passed"])
    false_reject = sum(1 for r in rows if r["expected"] == "pass" and not r["verdict"]["passed"])
    wrong_reason = sum(1 for r in rows if not r["ok"]) - false_pass - false_reject
    lines = [
        f"# Verifier corpus results ({device})",
        "",
        f"Command: `python tests/corpus_runner.py --device {device}` on {platform.node() or 'this machine'} "
        f"({platform.python_version()}); {len(rows)} candidates in {seconds:.0f}s.",
        f"False passes: **{false_pass}**. False rejects: **{false_reject}**. Rejected for another reason: "
        f"**{wrong_reason}**.",
        "",
        "| candidate | trick | expected | got | verdict reason |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        expected = "pass" if r["expected"] == "pass" else r["reason"]
        mark = "" if r["ok"] else " ❌"
        reason = r["verdict"]["reason"].replace("|", "\\|").replace("\n", " ")[:140]
        trick = r.get("trick", "").replace("|", "\\|")
        lines.append(f"| `{r['candidate']}` | {trick} | {expected} | {r['got']}{mark} | {reason} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run_corpus(args.device, Path(tmp), args.timeout, args.workers)
    table = render_table(rows, args.device, time.time() - started)
    if args.out:
        Path(args.out).write_text(table)
    print(table)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
