"""Starting, resuming and inspecting runs: what the CLI (and tests) call. The graph does the work."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kernelagent import budget, interrupts
from kernelagent.checkpoints import CHECKPOINT_DB, open_saver, redact, stored_context
from kernelagent.errors import RESUMABLE_EXIT_CODES, KernelAgentError, RunNotFound, environment_fault
from kernelagent.graph.builder import build_graph
from kernelagent.graph.context import RunContext
from kernelagent.runs.lock import driving, holder
from kernelagent.runs.paths import rebased
from kernelagent.runs.store import RunStore, list_runs, new_run_id, read_json
from kernelagent.spec import load_problem

ProgressCallback = Callable[[str, dict], None]
FINISHED_STATUSES = ("passed", "failed")


@contextmanager
def checkpointed_graph(runs_dir: str | Path, checkpoint_url: str | None = None) -> Iterator:
    """The graph compiled with a saver (SQLite in runs_dir, or PostgreSQL): state is checkpointed after every step;
    the run id is the thread."""
    with open_saver(checkpoint_url, runs_dir) as saver:
        yield build_graph(checkpointer=saver)


def start_run(
    spec_path: str, ctx: RunContext, on_event: ProgressCallback | None = None, run_id: str | None = None
) -> dict:
    """`run_id` may be chosen by the caller (a suite records it before the run starts, to resume it later)."""
    problem = load_problem(spec_path)  # fail fast, before a run folder exists, on a malformed spec
    run_id = run_id or new_run_id(problem.name)
    store = RunStore.at(ctx.runs_dir, run_id)
    store.root.mkdir(parents=True)
    with driving(store.root, f"run {run_id}"):
        store.update_meta(
            spec=str(Path(spec_path).resolve()), context=stored_context(ctx.to_dict()), status="running",
            pid=os.getpid(),
        )
        inputs = {"spec_path": str(Path(spec_path).resolve()), "run_id": run_id}
        _announce(on_event, run_id, store)
        return _drive(run_id, inputs, ctx, store, on_event)


def resume_run(run_id: str, runs_dir: str, overrides: dict | None = None, on_event=None) -> dict:  # noqa: ANN001
    store = RunStore.at(runs_dir, run_id)
    meta = store.meta()
    if not meta:
        raise RunNotFound(f"no run {run_id!r} under {runs_dir}/ (see `python cli.py runs`)")
    with driving(store.root, f"run {run_id}"):  # before any change: a refused second driver leaves no trace
        finished = _finished_result(store)
        if finished is not None:
            _announce(on_event, run_id, store)
            return finished  # nothing to redo, and the run stays as it ended (not "running")
        # The run's checkpoints are beside it, wherever its runs folder is now (it may have been moved).
        ctx = RunContext.from_dict(meta["context"] | (overrides or {}) | {"runs_dir": str(runs_dir)})
        changes = _changed_settings(meta["context"], stored_context(ctx.to_dict()))
        history = meta.get("resumed_with", []) + ([{"time": time.time(), "changed": changes}] if changes else [])
        store.update_meta(status="running", pid=os.getpid(), context=stored_context(ctx.to_dict()),
                          resumed_with=history)
        # Killed before the first checkpoint: nothing to resume from, so start the same run from its input.
        restart_input = {"spec_path": meta["spec"], "run_id": run_id}
        _announce(on_event, run_id, store)
        return _drive(run_id, None, ctx, store, on_event, restart_input)


def _changed_settings(before: dict, after: dict) -> dict:
    """{field: [old, new]} for each setting a resume changed (endpoint, model, timeouts, budgets...)."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}


def _finished_result(store: RunStore) -> dict | None:
    """result.json of a finished run, its paths under the run folder where that is now (it may have been moved)."""
    result = read_json(store.path("result.json"))
    if store.meta().get("status") in FINISHED_STATUSES and isinstance(result, dict):
        written_in = str(result.get("run_dir") or store.root)
        return rebased(result, [written_in], str(store.root.resolve()))
    return None


def _announce(on_event: ProgressCallback | None, run_id: str, store: RunStore) -> None:
    """The first event: which run folder this is, so an error report can say how to resume it."""
    if on_event:
        on_event("run", {"run_id": run_id, "run_dir": str(store.root)})


def _drive(run_id, inputs, ctx, store, on_event, restart_input=None) -> dict:  # noqa: ANN001
    budget.open_session(store)
    try:
        with interrupts.on_stop(lambda interrupt: _record_stop(store, interrupt)):
            return budget.annotate_result(store, _stream(run_id, inputs, ctx, store, on_event, restart_input))
    finally:
        try:
            budget.close_session(store)  # wall time adds up over sessions, whatever stopped this one
        except OSError:
            pass  # a full disk: the fault that stopped the run is what the user must see


def _record_stop(store: RunStore, interrupt: KeyboardInterrupt) -> None:
    """Ctrl-C, SIGTERM or SIGHUP: the run is resumable, and `runs` says so."""
    store.update_meta(status="interrupted", error=interrupts.describe(interrupt),
                      exit_code=interrupts.exit_code_of(interrupt))


def _stream(run_id, inputs, ctx, store, on_event, restart_input=None) -> dict:  # noqa: ANN001
    config = {"configurable": {"thread_id": run_id}, "max_concurrency": node_concurrency(ctx.num_seeds)}
    try:
        with checkpointed_graph(ctx.runs_dir, ctx.checkpoint_url) as graph:
            if inputs is None:
                saved = graph.get_state(config)  # its paths resolved against where the runs folder is now
                if not saved.next and saved.values.get("result"):
                    return saved.values["result"]  # already finished: nothing to redo
                if not saved.next and not saved.values:
                    inputs = restart_input
            for _namespace, mode, payload in graph.stream(
                inputs, config, context=ctx, stream_mode=["updates", "custom"], subgraphs=True
            ):
                if on_event and mode == "custom":
                    on_event(payload["event"], payload)
                elif on_event and mode == "updates" and not _namespace:
                    for node in payload:
                        on_event("step", {"node": node})
                elif on_event and mode == "updates" and "finish_seed" in payload:
                    _seed_finished(on_event, payload["finish_seed"])
            final = graph.get_state(config).values
    except KernelAgentError as err:
        _record_failure(store, err)
        raise
    except (OSError, sqlite3.DatabaseError) as err:
        fault = environment_fault(err, checkpoint_location(ctx))
        if fault is None:
            raise
        _record_failure(store, fault)
        raise fault from err
    return final["result"]


def node_concurrency(num_seeds: int) -> int:
    """Graph steps at once: every seed when the machine can take it, else a few per core (a seed's step mostly waits
    on the LLM; verifications are bounded again by the sandbox's slots)."""
    return max(4, min(num_seeds, 4 * (os.cpu_count() or 1)))


def _record_failure(store: RunStore, err: KernelAgentError) -> None:
    """The run stays resumable, and `runs` and `show` say why it stopped."""
    try:
        store.update_meta(status="interrupted", error=str(err), exit_code=err.exit_code)
    except OSError:
        pass  # the disk that stopped the run may refuse this write too; the checkpoint still lets `resume` continue


def checkpoint_location(ctx: RunContext) -> str:
    """Where the run's checkpoints are, for messages: the SQLite file, or the PostgreSQL URL without its password."""
    return redact(ctx.checkpoint_url) if ctx.checkpoint_url else str(Path(ctx.runs_dir) / CHECKPOINT_DB)


def _seed_finished(on_event: ProgressCallback, update: dict) -> None:
    """A seed branch's end (its finish_seed step, inside the subgraph), with its outcome."""
    for seed in update.get("seed_results", []):
        on_event("seed_finished", {k: seed.get(k) for k in ("seed", "passed", "rounds", "outcome")})


def runs_table(runs_dir: str) -> list[dict]:
    rows = []
    for meta in list_runs(runs_dir):
        status = meta.get("status", "?")
        if status == "running" and holder(Path(runs_dir) / meta["run_id"]) is None:
            status = "interrupted"  # its driver died without saying so (kill -9, a reboot)
        elif status == "interrupted" and meta.get("exit_code") not in (None, *RESUMABLE_EXIT_CODES):
            status = "error"  # stopped for good (a broken reference, a bad setting): resume would stop the same way
        rows.append({**meta, "status": status})
    return rows


def graph_mermaid() -> str:
    return build_graph().get_graph(xray=1).draw_mermaid()
