"""Matplotlib plots for the run report, returned as PNG data URIs so report.html stays one self-contained file."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

# Figure + the Agg canvas directly, never pyplot: no global figure state, safe from worker threads, no GUI backend.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kernelagent.report.collect import Attempt

# One colour per verdict class, stable across reports so readers learn them; unknown classes get the fallback.
VERDICT_COLOURS = {
    "passed": "#2e9d49",
    "numerical_mismatch": "#e8a33d",
    "runtime_error": "#d64541",
    "compile_error": "#a5352f",
    "syntax_error": "#8e44ad",
    "interface_error": "#3778c2",
    "policy_violation": "#6c3483",
    "timeout": "#7f8c8d",
    "no_code": "#b0b7bd",
    "tamper": "#111111",
    "resource_limit": "#5d6d7e",
}
FALLBACK_COLOUR = "#c0392b"
DPI = 100


@dataclass
class Plot:
    title: str
    alt: str
    data_uri: str


def verdict_colour(verdict_class: str) -> str:
    return VERDICT_COLOURS.get(verdict_class, FALLBACK_COLOUR)


def attempt_timeline(attempts: list[Attempt], winner_label: str | None) -> Plot | None:
    """One row per seed; each round a bar as long as its verification took, coloured by verdict class."""
    if not attempts:
        return None
    seeds = sorted({a.seed for a in attempts})
    bars = _timeline_bars(attempts)
    span = max(start + width for start, width in bars.values())
    fig = _figure(9, 1.4 + 0.55 * len(seeds))
    ax = fig.add_subplot()
    for attempt in attempts:
        start, width = bars[attempt.label]
        row = seeds.index(attempt.seed)
        is_winner = attempt.label == winner_label
        ax.barh(row, width, left=start, height=0.6, color=verdict_colour(attempt.verdict_class),
                edgecolor="black" if is_winner else "white", linewidth=2.0 if is_winner else 0.8)
        if width > span * 0.06:
            ax.text(start + width / 2, row, f"r{attempt.round}", ha="center", va="center", fontsize=8, color="white")
    ax.set_yticks(range(len(seeds)), [f"seed {s}" for s in seeds])
    ax.invert_yaxis()
    ax.set_xlabel("verification time, rounds in order (s)")
    ax.set_xlim(0, span * 1.02)
    classes = list(dict.fromkeys(a.verdict_class for a in attempts))
    fig.legend(handles=[Patch(color=verdict_colour(c), label=c) for c in classes], loc="outside lower center",
               ncol=min(len(classes), 5), fontsize=8, frameon=False)
    ax.set_axisbelow(True)  # grid lines behind the bars, not across them
    ax.grid(axis="x", alpha=0.3)
    return Plot("Attempt timeline", "Attempt timeline: one bar per round and seed, coloured by verdict",
                _to_data_uri(fig))


def _timeline_bars(attempts: list[Attempt]) -> dict[str, tuple[float, float]]:
    """(start, width) per attempt label: each seed's rounds laid end to end by cumulative wall_s."""
    totals = dict.fromkeys((a.seed for a in attempts), 0.0)
    for attempt in attempts:
        totals[attempt.seed] += attempt.wall_s or 0.0
    span = max(totals.values()) or 1.0
    bars, elapsed = {}, dict.fromkeys(totals, 0.0)
    for attempt in attempts:
        # A verdict without wall_s (no code, or an old run) still gets a sliver so the round stays visible.
        width = max(attempt.wall_s or 0.0, span * 0.015)
        bars[attempt.label] = (elapsed[attempt.seed], width)
        elapsed[attempt.seed] += width
    return bars


def candidate_speedups(timings: dict) -> Plot | None:
    candidates = [c for c in timings.get("candidates") or [] if c.get("speedup_vs_eager") is not None]
    if not candidates:
        return None
    has_compile = any(c.get("speedup_vs_compile") is not None for c in candidates)
    fig = _figure(9, 1.4 + 0.4 * len(candidates))
    ax = fig.add_subplot()
    rows = range(len(candidates))
    height = 0.38 if has_compile else 0.6
    offset = height / 2 if has_compile else 0.0
    ax.barh([r - offset for r in rows], [c["speedup_vs_eager"] for c in candidates], height=height,
            color="#3778c2", label="vs eager PyTorch")
    if has_compile:
        ax.barh([r + offset for r in rows], [c.get("speedup_vs_compile") or 0.0 for c in candidates],
                height=height, color="#e8a33d", label="vs torch.compile")
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_yticks(list(rows), [str(c.get("label", "?")) for c in candidates])
    ax.invert_yaxis()
    ax.set_xlabel("speedup (×, higher is better; dashed line = parity)")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    ax.set_axisbelow(True)  # grid lines behind the bars, not across them
    ax.grid(axis="x", alpha=0.3)
    return Plot("Speedup per candidate", "Bar chart of each verified candidate's speedup", _to_data_uri(fig))


def optimise_rounds(timings: dict) -> Plot | None:
    rounds = [r for r in timings.get("optimise_rounds") or [] if r.get("speedup_vs_eager") is not None]
    if not rounds:
        return None
    fig = _figure(9, 3.2)
    ax = fig.add_subplot()
    xs = [r["round"] for r in rounds]
    ax.plot(xs, [r["speedup_vs_eager"] for r in rounds], color="#7f8c8d", linewidth=1, zorder=1)
    for accepted, marker, colour, label in ((True, "o", "#2e9d49", "accepted"), (False, "X", "#d64541", "rejected")):
        picked = [r for r in rounds if bool(r.get("accepted")) == accepted]
        if picked:
            ax.scatter([r["round"] for r in picked], [r["speedup_vs_eager"] for r in picked], marker=marker,
                       color=colour, s=60, label=label, zorder=2)
    ax.step(xs, _best_so_far(rounds), where="post", color="#2e9d49", alpha=0.5, label="best accepted")
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_xticks(xs)
    ax.set_xlabel("optimisation round")
    ax.set_ylabel("speedup vs eager (×)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return Plot("Speedup per optimisation round", "Speedup of each optimisation round, accepted or rejected",
                _to_data_uri(fig))


def _best_so_far(rounds: list[dict]) -> list[float]:
    best, out = 0.0, []
    for r in rounds:
        if r.get("accepted"):
            best = max(best, r["speedup_vs_eager"])
        out.append(best if best else float("nan"))
    return out


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
