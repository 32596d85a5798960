"""Turns a spec file into a Problem: the prose description plus, when present, the PyTorch reference.

A Markdown spec's prose is the description; a fenced python block defining ``class Model``, ``get_inputs`` and
``get_init_inputs`` (the KernelBench convention) is the reference. A KernelBench ``.py`` file is a spec by itself.
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from kernelagent.errors import SpecError

REFERENCE_NAMES = ("Model", "get_inputs", "get_init_inputs")
SPEC_SUFFIXES = (".md", ".markdown", ".txt", ".py")
# KernelBench problems are 1-5 KiB and a prose spec rarely passes 20; the whole spec goes into every prompt.
MAX_SPEC_BYTES = 256 * 1024
_FENCE = re.compile(r"^(```|~~~)[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.S | re.M)


@dataclass(frozen=True)
class Problem:
    name: str
    description: str
    reference: str | None  # source of the PyTorch reference module, or None (then an LLM-written test decides)
    source_path: str

    @property
    def mode(self) -> str:
        """'reference' when a PyTorch reference judges candidates (they define ModelNew), else 'test'."""
        return "reference" if self.reference else "test"

    @property
    def entry(self) -> str:
        return "ModelNew" if self.reference else "kernel_function"

    def to_dict(self) -> dict:
        return asdict(self) | {"mode": self.mode, "entry": self.entry}

    @classmethod
    def from_dict(cls, data: dict) -> Problem:
        return cls(data["name"], data["description"], data["reference"], data["source_path"])


def load_problem(path: str | Path) -> Problem:
    path = Path(path)
    text = read_spec_text(path)
    name = _problem_name(path)
    if path.suffix == ".py":
        _check_reference(text, path)
        return Problem(name, _docstring_or_default(text), text, str(path))
    description, reference, first_line = _split_markdown(text)
    if reference is not None:
        _check_reference(reference, path, first_line)
    if not description.strip():
        raise SpecError(f"{path}: the spec has no prose describing the operation; say what the kernel must compute")
    return Problem(name, description.strip(), reference, str(path))


def read_spec_text(path: Path) -> str:
    """The spec's text, or a SpecError before anything is sent anywhere: a spec is a small UTF-8 text file of a kind
    we read (an image, a binary or a huge dump would go to the LLM whole and into every checkpoint)."""
    if not path.is_file():
        raise SpecError(f"spec file not found: {path}")
    if path.suffix.lower() not in SPEC_SUFFIXES:
        raise SpecError(f"{path}: a spec is a Markdown file ({', '.join(SPEC_SUFFIXES[:-1])}) or a KernelBench "
                        f"problem (.py); rename it if it is one")
    size = path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"{path} is {size // 1024} KiB; a spec may be at most {MAX_SPEC_BYTES // 1024} KiB: keep the "
                        f"description and the reference, and leave out data")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path} is not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}): a spec is "
                        f"Markdown or Python source") from err
    if "\x00" in text:
        raise SpecError(f"{path} is not text (a NUL byte at offset {text.index(chr(0))}): a spec is Markdown or "
                        f"Python source")
    if not text.strip():
        raise SpecError(f"spec file is empty: {path}")
    return text


def _problem_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("_") or "problem"


def _split_markdown(text: str) -> tuple[str, str | None, int]:
    """Prose stays the description; the first python block that looks like a reference becomes the reference.
    Also returns the file's line number of the reference's first line, so errors point into the file."""
    for match in _FENCE.finditer(text):
        lang, body = match.group(2).lower(), match.group(3)
        if lang in ("python", "py", "") and re.search(r"^class\s+Model\b", body, re.M):
            first_line = text.count("\n", 0, match.start(3)) + 1
            return text.replace(match.group(0), ""), body, first_line
    return text, None, 1


def _docstring_or_default(source: str) -> str:
    try:
        doc = ast.get_docstring(ast.parse(source))
    except SyntaxError:
        doc = None
    return doc or "Implement the operation computed by the PyTorch reference `Model.forward` below as Triton kernels."


def _check_reference(source: str, path: Path, first_line: int = 1) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        line = (err.lineno or 1) + first_line - 1  # the file's line, not the fence's
        raise SpecError(f"{path}: the reference does not parse: line {line}: {err.msg}") from err
    defined = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    missing = [name for name in REFERENCE_NAMES if name not in defined]
    if missing:
        raise SpecError(
            f"{path}: the reference must define class Model(nn.Module), get_inputs() and get_init_inputs() "
            f"(the KernelBench convention); missing: {', '.join(missing)}"
        )
