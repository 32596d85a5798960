"""Paths a run keeps, stored relative to its runs folder, so that the folder can be moved or copied and resumed there.

In memory a run's paths are absolute (every node, sandbox and judge opens them as they are); what is stored (the
checkpoints) names them from RUNS_FOLDER, the folder that holds the run's folder and the checkpoint database, and
they are resolved against wherever that folder is when they are loaded. Checkpoints written before this stored
absolute paths; they are rebased from the run folder they name (`legacy_roots`).

The JSON files a run writes into its own folder (timing/*.json, result.json, run.json) name its files relative to
that folder ("./kernel.py"); `write_in_run` writes them so and `read_in_run` resolves them where the folder is now.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langgraph.types import Send

from kernelagent.runs.store import read_json, write_json

RUNS_FOLDER = "$RUNS_FOLDER"
# Fields that named a file of the run by its absolute path in files written before they were stored relative.
PATH_KEYS = ("path", "run_dir", "kernel_path", "candidate_path")


def stored(value: Any, runs_folder: str | Path) -> Any:
    """`value` with every path under `runs_folder` written from RUNS_FOLDER."""
    return rebased(value, [str(Path(runs_folder).resolve())], RUNS_FOLDER)


def loaded(value: Any, runs_folder: str | Path, legacy: Iterable[str] = ()) -> Any:
    """`value` with RUNS_FOLDER (and any `legacy` absolute runs folder) resolved to where `runs_folder` is now."""
    return rebased(value, [RUNS_FOLDER, *legacy], str(Path(runs_folder).resolve()))


def rebased(value: Any, old_roots: list[str], new_root: str) -> Any:
    """A copy of `value` (dicts, lists, tuples, Send payloads) whose strings that are `old_root` or a path under it
    start from `new_root` instead. Other objects are kept as they are."""
    if isinstance(value, str):
        for old in old_roots:
            if value == old or value.startswith(old + "/"):
                return new_root + value[len(old):]
        return value
    if isinstance(value, dict):
        return {k: rebased(v, old_roots, new_root) for k, v in value.items()}
    if isinstance(value, list):
        return [rebased(v, old_roots, new_root) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(rebased(v, old_roots, new_root) for v in value)
    if isinstance(value, Send):
        return Send(value.node, rebased(value.arg, old_roots, new_root))
    return value


def legacy_roots(value: Any) -> list[str]:
    """The runs folder(s) named by absolute paths in a checkpoint written before paths were stored relative: the
    parent of the first `run_dir` found (and, when that was relative to the working directory, its resolution)."""
    run_dir = _find_run_dir(value)
    if run_dir is None or run_dir.startswith(RUNS_FOLDER):
        return []
    parent = Path(run_dir).parent
    roots = [str(parent)]
    if not parent.is_absolute():
        roots.append(str(parent.resolve()))  # candidates were under cwd/runs/...; the judge resolved its paths
    return roots


def _find_run_dir(value: Any) -> str | None:
    if isinstance(value, dict):
        if isinstance(value.get("run_dir"), str):
            return value["run_dir"]
        children: Iterable[Any] = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    elif isinstance(value, Send):
        children = [value.arg]
    else:
        return None
    for child in children:
        found = _find_run_dir(child)
        if found is not None:
            return found
    return None


def write_in_run(run_dir: str | Path, path: Path, value: Any) -> None:
    """Write `value` as JSON to `path` (a file of the run) with every path under `run_dir` relative to it."""
    write_json(path, relative_in_run(value, run_dir))


def read_in_run(run_dir: str | Path, path: Path) -> Any:
    """A JSON file of the run (None when absent or unreadable) with its paths (PATH_KEYS) where `run_dir` is now."""
    return resolved_in_run(read_json(path), run_dir)


def relative_in_run(value: Any, run_dir: str | Path) -> Any:
    """`value` with every path under `run_dir` written from "." (the run folder itself is ".")."""
    root = Path(run_dir)
    return rebased(value, sorted({str(root), str(root.resolve())}, key=len, reverse=True), ".")


def resolved_in_run(value: Any, run_dir: str | Path, key: str | None = None) -> Any:
    """`value` with the paths relative_in_run wrote (".", "./...") and the absolute ones of older files (PATH_KEYS
    fields) resolved against `run_dir` (run_path)."""
    if isinstance(value, str):
        relative = value == "." or value.startswith("./")
        return run_path(value, run_dir) if relative or (key in PATH_KEYS and value.startswith("/")) else value
    if isinstance(value, dict):
        return {k: resolved_in_run(v, run_dir, k) for k, v in value.items()}
    if isinstance(value, list):
        return [resolved_in_run(v, run_dir, key) for v in value]
    return value


def run_path(stored: str, run_dir: str | Path) -> str:
    """Where a path a run file stores is now: a relative one is under `run_dir`. An absolute one (files written
    before paths were stored relative) is rebased by its part under the run folder's name, and kept as it is when
    it does not name that folder (a file outside the run)."""
    root = Path(run_dir)
    path = Path(stored)
    if not path.is_absolute():
        return str(root / path)
    parts = path.parts
    if root.name not in parts:
        return stored
    last = len(parts) - 1 - parts[::-1].index(root.name)
    return str(root.joinpath(*parts[last + 1:]))
