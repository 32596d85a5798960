"""A run's progress as the user sees it: a live rich table on a terminal, one plain line per event otherwise,
one JSON object per event (`--json-logs`, for CI), or only the final line (`--quiet`)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Literal

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

Mode = Literal["live", "plain", "json", "quiet"]
REASON_CHARS = 70  # a verdict's reason in a table cell or log line; the full text is in the run folder


def choose_mode(quiet: bool = False, json_logs: bool = False, stream: IO[str] | None = None) -> Mode:
    """--json-logs wins over --quiet (a CI log wants the events); the live view needs a terminal."""
    if json_logs:
        return "json"
    if quiet:
        return "quiet"
    stream = sys.stdout if stream is None else stream
    return "live" if getattr(stream, "isatty", lambda: False)() else "plain"


@dataclass
class SeedLine:
    """What the table shows for one seed."""

    seed: int
    started: float
    round: int = 0
    state: str = "waiting"
    verdict: str = ""
    ended: float | None = None
    passed: bool = False


class Progress:
    """The `on_event(event, data)` callback of kernelagent.app, plus the run's first and last lines.

    Use as a context manager around the run: in live mode it owns the terminal until the run ends."""

    def __init__(self, mode: Mode, *, out: IO[str] | None = None, console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mode = mode
        self.out = sys.stdout if out is None else out
        self.clock = clock
        self.started = clock()
        self.seeds: dict[int, SeedLine] = {}
        self.failed_rounds = 0
        self.llm_requests = 0
        self.stage = "starting"
        self.run_id: str | None = None
        self.run_dir: str | None = None
        self._lock = threading.RLock()  # the live view's refresh thread reads what events write
        self._console = console or Console(file=self.out)
        self._live: Live | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        if self.mode == "live":
            self._live = Live(self, console=self._console, refresh_per_second=4, transient=False)
            self._live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._live is not None:
            self._live.stop()  # leaves the final table on screen, above the final line
            self._live = None

    def header(self, text: str, **data: object) -> None:
        """The line that says what is about to run."""
        if self.mode == "json":
            self._json("start", {"message": text, **data})
        elif self.mode != "quiet":
            self._print(text)

    def finish(self, line: str, **data: object) -> None:
        """The final line (also in --quiet); in JSON mode a final `finished` object carries it."""
        self.__exit__()
        if self.mode == "json":
            self._json("finished", {"message": line, **self.totals(), **data})
        else:
            self._print(line)

    def error(self, message: str, exit_code: int) -> None:
        """JSON mode only: CI sees why the run stopped on stdout too (the human line goes to stderr)."""
        self.__exit__()
        if self.mode == "json":
            self._json("error", {"message": message, "exit_code": exit_code, **self.totals()})

    # --- events ------------------------------------------------------------------------------------------------

    def __call__(self, event: str, data: dict) -> None:
        with self._lock:
            self._record(event, data)
        if self.mode == "json":
            self._json(event, data)
        elif self.mode == "plain":
            line = self.describe(event, data)
            if line:
                self._print(f"[{self.elapsed():7.1f}s] {line}")

    def _record(self, event: str, data: dict) -> None:
        now = self.clock()
        if event == "run":
            self.run_id, self.run_dir = data.get("run_id"), data.get("run_dir")
        elif event == "step":
            self.stage = data["node"]
        elif event in ("generating", "generated", "verdict", "seed_finished"):
            line = self.seeds.setdefault(data["seed"], SeedLine(data["seed"], now))
            line.round = data.get("round", line.round)
            self._update_seed(line, event, data, now)

    def _update_seed(self, line: SeedLine, event: str, data: dict, now: float) -> None:
        if event == "generating":
            line.state = "reusing stored reply" if data.get("cached") else "asking the LLM"
        elif event == "generated":
            self.llm_requests += 0 if data.get("cached") else 1
            line.state = "verifying" if data.get("has_code", True) else "reply had no code"
        elif event == "verdict":
            line.passed = bool(data["passed"])
            line.verdict = verdict_text(data)
            line.state = "passed" if line.passed else "failed"
            self.failed_rounds += 0 if line.passed else 1
            if line.passed:
                line.ended = now
        elif event == "seed_finished":
            line.ended = line.ended or now
            line.state = "passed" if data.get("passed") else str(data.get("outcome") or "done")

    @staticmethod
    def describe(event: str, data: dict) -> str | None:
        """One log line for an event (None: nothing worth a line)."""
        where = f"seed {data.get('seed')} round {data.get('round')}"
        if event == "run":
            return f"run {data['run_id']} in {data['run_dir']}"
        if event == "step":
            return f"- {data['node']}"
        if event == "generating":
            return f"{where}: {'reusing the stored reply' if data.get('cached') else 'asking the LLM'}"
        if event == "generated":
            return f"{where}: reply {'with code' if data.get('has_code', True) else 'WITHOUT code'}"
        if event == "verdict":
            wall = f" ({data['wall_s']}s)" if data.get("wall_s") is not None else ""
            return f"{where}: {verdict_text(data)}{wall}"
        if event == "seed_finished":
            return f"seed {data['seed']} finished: {data.get('outcome')} ({data.get('rounds')} rounds)"
        return f"{event}: {json.dumps(data, default=str)}"

    # --- totals and the live table -------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self.clock() - self.started

    def totals(self) -> dict:
        with self._lock:
            return {
                "verified": sum(1 for s in self.seeds.values() if s.passed),
                "seeds": len(self.seeds),
                "failed_rounds": self.failed_rounds,
                "llm_requests": self.llm_requests,
                "elapsed_s": round(self.elapsed(), 1),
            }

    def totals_line(self) -> str:
        t = self.totals()
        return (f"verified {t['verified']}/{t['seeds']} | failed rounds {t['failed_rounds']} | "
                f"LLM requests {t['llm_requests']} | elapsed {t['elapsed_s']:.0f}s | stage {self.stage}")

    def __rich__(self) -> Group:
        """Re-rendered by Live a few times a second, so running seeds' elapsed times tick."""
        table = Table(title=f"run {self.run_id}" if self.run_id else None, title_justify="left", expand=False)
        for column in ("seed", "round", "state", "last verdict", "elapsed"):
            table.add_column(column, no_wrap=column != "last verdict")
        now = self.clock()
        with self._lock:
            for line in sorted(self.seeds.values(), key=lambda s: s.seed):
                style = "green" if line.passed else "red" if line.verdict.startswith("FAIL") else ""
                seconds = (line.ended or now) - line.started
                table.add_row(str(line.seed), str(line.round), line.state, Text(line.verdict, style=style),
                              f"{seconds:.0f}s")
        return Group(table, Text(self.totals_line(), style="bold"))

    # --- output ----------------------------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=self.out, flush=True)

    def _json(self, event: str, data: dict) -> None:
        record = {"event": event, "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                  "elapsed_s": round(self.elapsed(), 3), **{k: v for k, v in data.items() if k != "event"}}
        print(json.dumps(record, default=str), file=self.out, flush=True)


def verdict_text(data: dict) -> str:
    """PASS, or FAIL <failure class>: <the reason's first line, shortened>."""
    if data.get("passed"):
        return "PASS"
    reason = (str(data.get("reason") or "").strip().splitlines() or [""])[0]
    if len(reason) > REASON_CHARS:
        reason = reason[: REASON_CHARS - 3] + "..."
    return f"FAIL {data.get('failure_class')}: {reason}"
