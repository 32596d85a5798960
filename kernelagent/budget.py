"""Token, cost and wall-clock budgets of a run: accounting from the stored LLM usage, and a check before each call.

A limit stops the run cleanly *before* the LLM call that would pass it (BudgetExceeded, exit code 5); the run stays
resumable, and `resume RUN_ID --max-tokens N` with a higher limit continues it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kernelagent.errors import KernelAgentError
from kernelagent.runs.store import RunStore, read_json, write_json

CHARS_PER_TOKEN = 4  # a prompt's size before the endpoint counts it; the usual rule of thumb for English and code


class BudgetExceeded(KernelAgentError):
    """A token, cost or wall-time limit would be passed: the run stopped before the next LLM call (resumable)."""

    exit_code = 5


@dataclass(frozen=True)
class Limits:
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_wall_s: float | None = None
    price_in_per_m: float = 0.0
    price_out_per_m: float = 0.0

    @classmethod
    def from_context(cls, context: dict) -> Limits:
        return cls(**{k: context[k] for k in cls.__dataclass_fields__ if context.get(k) is not None})

    def cost(self, input_tokens: float, output_tokens: float) -> float | None:
        """USD, or None when no price is set (cost unknown: report tokens only)."""
        if not (self.price_in_per_m or self.price_out_per_m):
            return None
        return (input_tokens * self.price_in_per_m + output_tokens * self.price_out_per_m) / 1e6


def usage_totals(llm_dir: Path) -> dict:
    """Requests and tokens of every recorded LLM call of a run (the `<task>.usage.json` files)."""
    totals = {"requests": 0, "input_tokens": 0, "output_tokens": 0}
    for usage_file in Path(llm_dir).glob("*.usage.json"):
        try:
            usage = json.loads(usage_file.read_text())
        except (OSError, ValueError):
            continue  # a file being replaced right now: the next check counts it
        totals["requests"] += 1
        totals["input_tokens"] += usage.get("input_tokens", 0)
        totals["output_tokens"] += usage.get("output_tokens", 0)
    return totals


# --- wall clock: closed sessions add up in run.json's "wall_s"; the open one is timed from "session_started" ---


def open_session(store: RunStore) -> None:
    """Called when a run starts or resumes. A session killed without closing is counted up to its last update."""
    meta = store.meta()
    wall = float(meta.get("wall_s") or 0.0)
    if meta.get("session_started"):
        wall += max(0.0, float(meta.get("updated", meta["session_started"])) - float(meta["session_started"]))
    store.update_meta(wall_s=round(wall, 3), session_started=time.time(), budget_stop=None)


def close_session(store: RunStore) -> float:
    """Called when a run stops for any reason; returns the run's total wall time over all its sessions."""
    wall = wall_used(store.meta())
    store.update_meta(wall_s=round(wall, 3), session_started=None)
    return wall


def wall_used(meta: dict) -> float:
    started = meta.get("session_started")
    return float(meta.get("wall_s") or 0.0) + (time.time() - float(started) if started else 0.0)


# --- the check before each LLM call ---

_lock = threading.Lock()
# Calls of a run asked but not yet recorded (seeds ask concurrently): run folder -> {task: projected tokens}.
_in_flight: dict[str, dict[str, tuple[float, float]]] = {}


@contextmanager
def reserve(store: RunStore, task: str, prompt: str) -> Iterator[None]:
    """Wrap one LLM call and its recording: raises BudgetExceeded instead of making a call that would pass a limit."""
    limits = Limits.from_context(store.meta().get("context") or {})
    if limits.max_tokens is None and limits.max_cost_usd is None and limits.max_wall_s is None:
        yield  # no limit: nothing to check or reserve
        return
    key = str(store.root)
    with _lock:
        projection = _project(store, limits, prompt, _in_flight.get(key, {}))
        _check(store, limits, task, projection)
        _in_flight.setdefault(key, {})[task] = projection["this_call"]
    try:
        yield
    finally:
        with _lock:
            _in_flight.get(key, {}).pop(task, None)


def _project(store: RunStore, limits: Limits, prompt: str, pending: dict) -> dict:
    """Tokens spent, plus calls in flight, plus this call: its prompt and the run's average reply so far."""
    spent = usage_totals(store.path("llm"))
    average_out = spent["output_tokens"] / spent["requests"] if spent["requests"] else 0.0
    this_call = (len(prompt) / CHARS_PER_TOKEN, average_out)
    tokens_in = spent["input_tokens"] + this_call[0] + sum(p[0] for p in pending.values())
    tokens_out = spent["output_tokens"] + this_call[1] + sum(p[1] for p in pending.values())
    return {
        "spent_tokens": spent["input_tokens"] + spent["output_tokens"],
        "projected_tokens": round(tokens_in + tokens_out),
        "spent_cost_usd": limits.cost(spent["input_tokens"], spent["output_tokens"]),
        "projected_cost_usd": limits.cost(tokens_in, tokens_out),
        "this_call": this_call,
    }


def _check(store: RunStore, limits: Limits, task: str, projection: dict) -> None:
    meta = store.meta()
    wall = wall_used(meta)
    reason = None
    if limits.max_wall_s is not None and wall >= limits.max_wall_s:
        reason = f"the run has used {wall:.1f}s of wall time (--max-wall {limits.max_wall_s:g})"
    elif limits.max_tokens is not None and projection["projected_tokens"] > limits.max_tokens:
        reason = (f"the next LLM call ({task}) would bring the run to ~{projection['projected_tokens']} tokens "
                  f"(spent {projection['spent_tokens']}; --max-tokens {limits.max_tokens})")
    elif limits.max_cost_usd is not None and (projection["projected_cost_usd"] or 0) > limits.max_cost_usd:
        reason = (f"the next LLM call ({task}) would bring the run to ~${projection['projected_cost_usd']:.4f} "
                  f"(spent ${projection['spent_cost_usd'] or 0:.4f}; --max-cost {limits.max_cost_usd:g})")
    if reason is None:
        return
    stop = {"task": task, "reason": reason, "wall_s": round(wall, 3),
            **{k: v for k, v in projection.items() if k != "this_call"}}
    store.update_meta(budget_stop=stop)
    raise BudgetExceeded(f"budget reached: {reason}. The run is resumable: `python cli.py resume "
                         f"{store.run_id}` with a higher limit continues it.")


def annotate_result(store: RunStore, result: dict) -> dict:
    """Adds the run's cost (None when no price is set) and wall time to result.json and the returned result."""
    limits = Limits.from_context(store.meta().get("context") or {})
    totals = usage_totals(store.path("llm"))
    extra = {"tokens": result.get("tokens") or totals,
             "cost_usd": _rounded(limits.cost(totals["input_tokens"], totals["output_tokens"])),
             "wall_s": round(wall_used(store.meta()), 3)}
    path = store.path("result.json")
    stored = read_json(path)
    if isinstance(stored, dict):
        write_json(path, stored | extra)
    return result | extra


def _rounded(cost: float | None) -> float | None:
    return None if cost is None else round(cost, 6)
