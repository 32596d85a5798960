"""Run folders: every artifact of a run, keyed so that a re-run node overwrites rather than duplicates."""

from kernelagent.runs.store import RunStore, list_runs, new_run_id

__all__ = ["RunStore", "list_runs", "new_run_id"]
