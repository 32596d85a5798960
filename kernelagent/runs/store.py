"""Layout of `runs/<run_id>/` and the small JSON files that describe a run.

runs/<run_id>/
  run.json                  status, spec, context, timestamps (what `runs` and `show` read)
  spec.<ext>                the spec as given
  harness/                  reference inputs and outputs, or the frozen test
  llm/<task>.prompt.md      every prompt as sent, and <task>.reply.md every raw reply
  seeds/seed<i>/round<r>.py candidates, with round<r>.verdict.json and round<r>.log
  result.json, kernel.py    the outcome and the winning kernel
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kernelagent.errors import CorruptRunFile


def new_run_id(problem_name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{problem_name[:32]}-{secrets.token_hex(3)}"


def write_json(path: Path, data: object) -> None:
    """Atomic and thread-safe: a run killed mid-write leaves the old file, never half of a new one, and concurrent
    writers (seed threads, suite problems) each write their own temp file, so the last complete write wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, default=str) + "\n"
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk must not leave temp files behind as well
        raise


def read_json(path: Path, default: object = None) -> object:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return default


def read_trusted_json(path: Path, remedy: str) -> dict:
    """A JSON object a run depends on ({} when absent). Damage is an environment fault that says what to do, not a
    silent default: a run whose run.json reads as {} would be taken for a missing run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise CorruptRunFile(f"{path} is corrupt ({_first_line(err)}): restore it, or {remedy}") from err
    if not isinstance(data, dict):
        raise CorruptRunFile(f"{path} is corrupt (not a JSON object): restore it, or {remedy}")
    return data


def _first_line(err: Exception) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:200]


@dataclass(frozen=True)
class RunStore:
    root: Path

    @classmethod
    def at(cls, runs_dir: str | Path, run_id: str) -> RunStore:
        return cls(Path(runs_dir) / run_id)

    @property
    def run_id(self) -> str:
        return self.root.name

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def write_text(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # --- LLM exchanges: a node that re-runs on resume reuses the stored reply instead of asking again ---
    def llm_reply(self, task: str) -> str | None:
        path = self.root / "llm" / f"{task}.reply.md"
        return path.read_text() if path.exists() else None

    def record_llm(self, task: str, prompt: str, reply: str, usage: dict) -> None:
        self.write_text(f"llm/{task}.prompt.md", prompt)
        self.write_text(f"llm/{task}.reply.md", reply)
        write_json(self.root / "llm" / f"{task}.usage.json", usage)

    # --- candidates ---
    def candidate_path(self, seed: int, round_: int) -> Path:
        return self.root / "seeds" / f"seed{seed}" / f"round{round_}.py"

    # --- run metadata ---
    def meta(self) -> dict:
        """run.json ({} before it exists); CorruptRunFile when it exists but is not a JSON object."""
        return read_trusted_json(self.root / "run.json", "delete the run folder and start the run again")

    def update_meta(self, **changes: object) -> None:
        meta = self.meta() | changes | {"updated": time.time()}
        write_json(self.root / "run.json", meta)


def list_runs(runs_dir: str | Path) -> list[dict]:
    rows = []
    for run_json in sorted(Path(runs_dir).glob("*/run.json")):
        try:
            meta = read_trusted_json(run_json, "delete the run folder")
        except CorruptRunFile:
            meta = {"status": "corrupt"}  # one damaged run must not hide the others
        rows.append({"run_id": run_json.parent.name, **meta})
    return rows
