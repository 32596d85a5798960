"""Render a run folder into report.md and a self-contained report.html, and summarise it in a few lines of text."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path
from types import ModuleType

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from kernelagent.report.collect import RunReport, load_run

TEMPLATES = Path(__file__).resolve().parent / "templates"
NOT_TIMED_CPU = "not timed (CPU interpreter run)"
NOT_TIMED_GPU = "not timed (no performance stage ran)"


def write_reports(run_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html into `run_dir`; returns their paths in that order."""
    # Imported here: matplotlib costs a second at import, and callers of summarise() alone never need it.
    from kernelagent.report import plots

    run_dir = Path(run_dir)
    report = load_run(run_dir)
    context = _template_context(report)
    context["timeline"] = plots.attempt_timeline(report.attempts, report.winner_label)
    context["perf_figures"] = _performance_plots(plots, report.timings)
    context["verdict_colour"] = plots.verdict_colour
    env = _environment()
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    md_path.write_text(env.get_template("report.md.j2").render(context), encoding="utf-8")
    html_path.write_text(env.get_template("report.html.j2").render(context), encoding="utf-8")
    return md_path, html_path


def _performance_plots(plots: ModuleType, timings: dict | None) -> list:
    if not timings:
        return []
    return [p for p in (plots.candidate_speedups(timings), plots.optimise_rounds(timings)) if p is not None]


def summarise(run_dir: Path) -> str:
    """A few plain-text lines: problem, outcome, attempts by verdict, tokens, speed."""
    report = load_run(Path(run_dir))
    lines = [f"{report.problem.title} [{report.run_id}] ({report.mode} mode, {report.device}): "
             f"{report.status.upper()}"]
    if report.winner:
        lines.append(f"winner: {report.winner_label} after {report.winner.get('rounds')} round(s)")
    lines.append(f"attempts: {len(report.attempts)} across {len({a.seed for a in report.attempts})} seed(s) — "
                 + (", ".join(f"{n} {cls}" for cls, n in report.verdict_counts().items()) or "none"))
    tokens = report.tokens
    if tokens:
        lines.append(f"tokens: {tokens.get('requests', 0)} request(s), {tokens.get('input_tokens', 0)} in / "
                     f"{tokens.get('output_tokens', 0)} out")
    lines.append(speed_line(report))
    return "\n".join(lines)


def speed_line(report: RunReport) -> str:
    best = best_candidate(report.timings)
    if best is None:
        return f"speed: {not_timed_note(report)}"
    line = f"speed: best {best.get('label')} {best['ms']:.4g} ms, {best['speedup_vs_eager']:.2f}× vs eager"
    if best.get("speedup_vs_compile") is not None:
        line += f", {best['speedup_vs_compile']:.2f}× vs torch.compile"
    if best.get("low_ms") is not None:
        line += f" (median; interval {format_interval(best)})"
    if best.get("note"):
        line += f"; {best['note']}"
    return line


def best_candidate(timings: dict | None) -> dict | None:
    """The kernel the run shipped (select's choice); older result.json files without one: the largest speedup."""
    shipped = (timings or {}).get("best")
    if shipped and shipped.get("speedup_vs_eager") is not None:
        return shipped
    timed = [c for c in (timings or {}).get("candidates") or [] if c.get("speedup_vs_eager") is not None]
    return max(timed, key=lambda c: c["speedup_vs_eager"]) if timed else None


def not_timed_note(report: RunReport) -> str:
    return NOT_TIMED_CPU if report.device in ("cpu", "?") else NOT_TIMED_GPU


def _template_context(report: RunReport) -> dict:
    return {
        "r": report,
        "counts": report.verdict_counts(),
        "best": best_candidate(report.timings),
        "not_timed": not_timed_note(report),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _environment() -> Environment:
    # Autoescape every HTML template: reasons, evidence, kernels and specs come from the LLM or the user.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(seconds=format_seconds, num=format_number, md_cell=md_cell, md_text=md_text,
                       md_fence=md_fence, interval=format_interval)
    return env


def format_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def format_number(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def format_interval(row: dict) -> str:
    """A timing row's confidence interval for the median, with its coverage; "no interval" where it had none."""
    low, high = row.get("low_ms"), row.get("high_ms")
    if low is None or high is None:
        return "no interval"
    level = row.get("level")
    return f"{low:.4g}–{high:.4g} ms" + (f" ({level:.0%})" if level is not None else "")


def md_cell(value: object) -> str:
    """One Markdown table cell: a single line, pipes escaped, raw HTML neutralised (viewers render it)."""
    text = " ".join(str(value).split())
    return html.escape(text, quote=False).replace("|", "\\|")


def md_text(value: object) -> str:
    """Markdown prose with raw HTML neutralised; line breaks kept."""
    return html.escape(str(value), quote=False)


def md_fence(code: str) -> str:
    """A backtick fence longer than any backtick run in `code`, so LLM code cannot close it early."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)
