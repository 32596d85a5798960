"""Running a suite: several problems at once, each its own run (its own LangGraph thread), resumable as a whole.

runs/suites/<suite_id>/
  suite.json        the problems, in order, each with its run id once started and its last status
  <run_id>/         each problem's run folder (checkpoints.sqlite beside them unless --checkpoint-url)
  table.csv, table.json, table.md
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kernelagent import app
from kernelagent.budget import BudgetExceeded
from kernelagent.checkpoints import stored_context
from kernelagent.errors import KernelAgentError, RunNotFound, UsageError
from kernelagent.executors import get_executor
from kernelagent.graph.context import RunContext
from kernelagent.runs.lock import driving
from kernelagent.runs.store import RunStore, new_run_id, read_json, read_trusted_json, write_json
from kernelagent.sandbox.slots import restrict_gpus
from kernelagent.spec import load_problem
from kernelagent.suite.discover import SuiteProblem
from kernelagent.suite.tables import problem_row, write_tables

SUITE_FILE = "suite.json"
Progress = Callable[[str, dict], None]


def suites_dir(runs_dir: str | Path) -> Path:
    return Path(runs_dir) / "suites"


def new_suite_id(source: str | Path) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(source).resolve().name[:32]}"


class Suite:
    """suite.json and the runs it names. Thread-safe: problems finish concurrently and each records its status."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    @classmethod
    def create(cls, runs_dir: str | Path, suite_id: str, source: str | Path, problems: list[SuiteProblem],
               ctx: RunContext, filters: dict) -> Suite:
        root = suites_dir(runs_dir) / suite_id
        if (root / SUITE_FILE).exists():
            raise UsageError(f"suite {suite_id!r} exists already: continue it with `bench --resume {suite_id}`")
        suite = cls(root)
        entries = [p.to_dict() | {"run_id": None, "status": "pending"} for p in problems]
        write_json(root / SUITE_FILE, {"suite_id": suite_id, "source": str(Path(source).resolve()),
                                       "created": time.time(), "filters": filters, "problems": entries,
                                       "context": stored_context(suite_context(ctx, root).to_dict())})
        return suite

    @classmethod
    def open(cls, runs_dir: str | Path, suite_id: str) -> Suite:
        root = suites_dir(runs_dir) / suite_id
        if not (root / SUITE_FILE).exists():
            raise RunNotFound(f"no suite {suite_id!r} under {suites_dir(runs_dir)}/")
        return cls(root)

    @property
    def suite_id(self) -> str:
        return self.root.name

    def data(self) -> dict:
        return read_trusted_json(self.root / SUITE_FILE, "delete the suite folder and run the suite again")

    def context(self, overrides: dict | None = None) -> RunContext:
        return suite_context(RunContext.from_dict(self.data()["context"] | (overrides or {})), self.root)

    def record(self, key: str, **changes: object) -> None:
        with self._lock:
            data = self.data()
            for entry in data["problems"]:
                if entry["key"] == key:
                    entry.update(changes)
            write_json(self.root / SUITE_FILE, data)

    def rows(self) -> list[dict]:
        return [problem_row(entry, self.root) for entry in self.data()["problems"]]

    def write_tables(self) -> dict:
        return write_tables(self.root, self.rows())


def suite_context(ctx: RunContext, root: Path) -> RunContext:
    """Every run of a suite lives in the suite's folder (and, with SQLite, checkpoints into its database)."""
    return RunContext.from_dict(ctx.to_dict() | {"runs_dir": str(root)})


def run_suite(suite: Suite, parallel: int, overrides: dict | None = None, on_event: Progress | None = None) -> dict:
    """Runs, resumes or skips every problem, `parallel` at a time; writes the tables; returns their summary."""
    if parallel < 1:
        raise UsageError("--parallel must be at least 1")
    with driving(suite.root, f"suite {suite.suite_id}"):
        ctx = suite.context(overrides)
        restrict_gpus(ctx.gpu_count)  # one set of GPUs for every problem, chosen before any takes a slot
        if ctx.executor == "ray":
            get_executor(ctx)  # joined or started now: from the first problem on, Ray places every GPU run
        return _run_all(suite, parallel, ctx, on_event)


def _run_all(suite: Suite, parallel: int, ctx: RunContext, on_event: Progress | None) -> dict:
    entries = suite.data()["problems"]
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="suite")
    try:
        for future in [pool.submit(_run_problem, suite, entry, ctx, on_event) for entry in entries]:
            future.result()
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)  # unstarted problems stay pending for `bench --resume`
        raise
    pool.shutdown()
    return suite.write_tables()


def _run_problem(suite: Suite, entry: dict, ctx: RunContext, on_event: Progress | None) -> None:
    key, run_id = entry["key"], entry.get("run_id")
    if run_id and _finished(suite.root, run_id):
        suite.record(key, status=_status(suite.root, run_id))
        _tell(on_event, "skipped", key=key, run_id=run_id, status=_status(suite.root, run_id))
        return
    if run_id is None:
        run_id = new_run_id(load_problem(entry["spec"]).name) if Path(entry["spec"]).exists() else new_run_id(key)
        suite.record(key, run_id=run_id, status="running")  # before the run starts: a killed suite finds it again
    _tell(on_event, "started", key=key, run_id=run_id)
    started = time.monotonic()
    try:
        result = _start_or_resume(entry["spec"], run_id, ctx)
        status, note = result["status"], None
    except BudgetExceeded as err:
        status, note = "stopped", str(err)
    except KernelAgentError as err:
        status, note = "error", str(err)
    except Exception as err:  # noqa: BLE001 - one problem's crash must not end the others
        status, note = "error", f"{type(err).__name__}: {err}"
    wall_s = round(time.monotonic() - started, 1)  # this sitting's, where a problem was resumed
    suite.record(key, status=status, error=note, wall_s=wall_s)
    _tell(on_event, "finished", key=key, run_id=run_id, status=status, error=note, wall_s=wall_s)


def _start_or_resume(spec: str, run_id: str, ctx: RunContext) -> dict:
    store = RunStore.at(ctx.runs_dir, run_id)
    if store.meta():
        # The suite's options win over the run's stored ones, so `bench --resume --max-tokens N` reaches every run.
        return app.resume_run(run_id, ctx.runs_dir, overrides=ctx.to_dict())
    if store.root.exists():
        shutil.rmtree(store.root)  # killed between creating the folder and its run.json: nothing in it to keep
    return app.start_run(spec, ctx, run_id=run_id)


def _finished(root: Path, run_id: str) -> bool:
    return _status(root, run_id) in app.FINISHED_STATUSES and (root / run_id / "result.json").exists()


def _status(root: Path, run_id: str) -> str | None:
    return (read_json(root / run_id / "run.json", {}) or {}).get("status")


def _tell(on_event: Progress | None, event: str, **data: object) -> None:
    if on_event:
        on_event(event, data)
