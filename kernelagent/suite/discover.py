"""Finding a suite's problems: Markdown specs and KernelBench problem files under a folder (level1/, level2/, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kernelagent.errors import UsageError

# Folders that hold material for problems, not problems: scripted replies, caches, hidden and private folders.
SKIP_DIRS = {"replies", "__pycache__", "node_modules"}
SKIP_FILES = {"README.md", "CHANGELOG.md", "__init__.py", "conftest.py", "setup.py"}


@dataclass(frozen=True)
class SuiteProblem:
    key: str  # the path under the suite folder, without suffix: "level1/19_ReLU"
    spec: str  # absolute path

    def to_dict(self) -> dict:
        return {"key": self.key, "spec": self.spec}


def discover(
    root: str | Path, *, substring: str | None = None, level: int | None = None, limit: int | None = None
) -> list[SuiteProblem]:
    """Every problem under `root`, in natural order (2_x before 10_x, as KernelBench numbers them), then filtered."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise UsageError(f"no suite folder {root}")
    problems = [SuiteProblem(_key(path, root), str(path)) for path in _candidates(root)]
    if level is not None:
        problems = [p for p in problems if f"level{level}" in Path(p.key).parts]
    if substring:
        problems = [p for p in problems if substring.lower() in p.key.lower()]
    if limit is not None:
        problems = problems[: max(0, limit)]
    if not problems:
        raise UsageError(f"no problems under {root} (after --filter/--level/--limit): expected .md specs or "
                         "KernelBench .py files defining class Model")
    return problems


def _candidates(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or path.suffix not in (".md", ".py") or path.name in SKIP_FILES:
            continue
        if any(part in SKIP_DIRS or part.startswith((".", "_")) for part in relative.parts[:-1]):
            continue
        if path.suffix == ".py" and not re.search(r"^class\s+Model\b", path.read_text(errors="replace"), re.M):
            continue  # a helper module, not a KernelBench problem
        found.append(path)
    return sorted(found, key=lambda p: _natural(str(p.relative_to(root))))


def _key(path: Path, root: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _natural(text: str) -> list:
    return [int(chunk) if chunk.isdigit() else chunk.lower() for chunk in re.split(r"(\d+)", text)]
