"""Read a run folder (result.json, run.json, spec, verdict files) into one plain object the renderers share."""

from __future__ import annotations

import ast
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from kernelagent.runs.paths import resolved_in_run

EXCERPT_CHARS = 600
ROUND_FILE = re.compile(r"round(\d+)\.verdict\.json$")
SEED_DIR = re.compile(r"seed(\d+)$")


@dataclass
class Attempt:
    seed: int
    round: int
    passed: bool
    failure_class: str | None
    reason: str
    evidence: str = ""
    wall_s: float | None = None

    @property
    def label(self) -> str:
        return f"seed{self.seed}/round{self.round}"

    @property
    def verdict_class(self) -> str:
        return "passed" if self.passed else (self.failure_class or "failed")


@dataclass
class Problem:
    name: str
    title: str
    description: str
    spec_file: str
    spec_source: str


@dataclass
class RunReport:
    run_dir: Path
    run_id: str
    problem: Problem
    status: str
    mode: str
    device: str
    settings: dict
    tokens: dict
    attempts: list[Attempt]
    winner: dict | None
    winner_label: str | None
    kernel_code: str | None
    timings: dict | None
    started: str | None
    updated: str | None
    harness_warnings: list[str] = field(default_factory=list)

    @property
    def total_wall_s(self) -> float:
        return sum(a.wall_s or 0.0 for a in self.attempts)

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for attempt in self.attempts:
            counts[attempt.verdict_class] = counts.get(attempt.verdict_class, 0) + 1
        return counts


def load_run(run_dir: Path) -> RunReport:
    run_dir = Path(run_dir)
    # result.json is absent while a run is in flight or after a crash; run.json still names the problem and status.
    result = resolved_in_run(_read_json(run_dir / "result.json"), run_dir)
    meta = resolved_in_run(_read_json(run_dir / "run.json"), run_dir)
    attempts = load_attempts(run_dir, result.get("seeds") or [])
    winner = result.get("winner")
    return RunReport(
        run_dir=run_dir,
        run_id=result.get("run_id") or run_dir.name,
        problem=load_problem(run_dir, result.get("problem") or meta.get("problem") or run_dir.name),
        status=result.get("status") or meta.get("status") or "unknown",
        mode=result.get("mode") or meta.get("mode") or "?",
        device=result.get("device") or meta.get("device") or "?",
        settings=result.get("settings") or {},
        tokens=result.get("tokens") or {},
        attempts=attempts,
        winner=winner,
        winner_label=_winner_label(winner),
        kernel_code=_kernel_code(run_dir, winner),
        timings=_timed(result.get("timings")),
        started=_started_from_run_id(result.get("run_id") or run_dir.name),
        updated=_format_epoch(meta.get("updated")),
        harness_warnings=list((result.get("harness") or {}).get("warnings") or []),
    )


def load_attempts(run_dir: Path, seed_summaries: list[dict]) -> list[Attempt]:
    """Verdict files are the record; a seed's result.json history fills in only when its files are gone."""
    by_seed: dict[int, list[Attempt]] = {}
    for seed_dir in sorted((run_dir / "seeds").glob("seed*")):
        if match := SEED_DIR.search(seed_dir.name):
            seed = int(match.group(1))
            by_seed[seed] = [_attempt_from_file(seed, f) for f in seed_dir.glob("round*.verdict.json")]
    for summary in seed_summaries:
        if not by_seed.get(summary["seed"]):
            by_seed[summary["seed"]] = [_attempt_from_history(summary["seed"], h) for h in summary.get("history", [])]
    return [a for seed in sorted(by_seed) for a in sorted(by_seed[seed], key=lambda a: a.round)]


def _attempt_from_file(seed: int, path: Path) -> Attempt:
    verdict = _read_json(path)
    return Attempt(
        seed=seed,
        round=int(ROUND_FILE.search(path.name).group(1)),
        passed=bool(verdict.get("passed")),
        failure_class=verdict.get("failure_class"),
        reason=str(verdict.get("reason") or ""),
        evidence=str(verdict.get("evidence") or ""),
        wall_s=verdict.get("wall_s"),
    )


def _attempt_from_history(seed: int, entry: dict) -> Attempt:
    return Attempt(
        seed=seed,
        round=int(entry["round"]),
        passed=bool(entry.get("passed")),
        failure_class=entry.get("failure_class"),
        reason=str(entry.get("reason") or ""),
        wall_s=entry.get("wall_s"),
    )


def load_problem(run_dir: Path, name: str) -> Problem:
    spec = next((p for p in (run_dir / "spec.md", run_dir / "spec.py") if p.exists()), None)
    if spec is None:
        return Problem(name=name, title=name, description="", spec_file="", spec_source="")
    text = spec.read_text(errors="replace")
    title, description = _describe_markdown(text) if spec.suffix == ".md" else _describe_python(text)
    return Problem(name=name, title=title or name, description=excerpt(description), spec_file=spec.name,
                   spec_source=text)


def _describe_markdown(text: str) -> tuple[str, str]:
    prose = re.sub(r"```.*?(```|\Z)", "", text, flags=re.S)  # code blocks are shown in full elsewhere
    heading = re.search(r"^#+\s+(.+)$", prose, flags=re.M)
    body = prose[heading.end():] if heading else prose
    return (heading.group(1).strip() if heading else ""), body.strip()


def _describe_python(text: str) -> tuple[str, str]:
    """The module docstring, else Model's: parsed, never executed."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return "", ""
    doc = ast.get_docstring(tree)
    if not doc:
        model = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"), None)
        doc = ast.get_docstring(model) if model else None
    return "", doc or ""


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    text = re.sub(r"\n{3,}", "\n\n", text.strip())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def _winner_label(winner: dict | None) -> str | None:
    if not winner:
        return None
    match = re.search(r"round(\d+)\.py$", str(winner.get("candidate_path") or ""))
    round_ = int(match.group(1)) if match else int(winner.get("rounds", 1)) - 1
    return f"seed{winner['seed']}/round{round_}"


def _kernel_code(run_dir: Path, winner: dict | None) -> str | None:
    if (run_dir / "kernel.py").exists():
        return (run_dir / "kernel.py").read_text(errors="replace")
    candidate = Path(winner["candidate_path"]) if winner and winner.get("candidate_path") else None
    if candidate is not None and candidate.exists():  # resolved where the run folder is now (load_run)
        return candidate.read_text(errors="replace")
    return None


def _started_from_run_id(run_id: str) -> str | None:
    match = re.match(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})", run_id)
    if not match:
        return None
    y, mo, d, h, mi, s = match.groups()
    return f"{y}-{mo}-{d} {h}:{mi}:{s}"


def _format_epoch(value: object) -> str | None:
    if not isinstance(value, (int, float)):
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _timed(timings: dict | None) -> dict | None:
    """A timing section that only says why timing was skipped (CPU runs) is no timing at all."""
    return None if not timings or "skipped" in timings else timings
