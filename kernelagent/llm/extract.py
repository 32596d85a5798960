"""Pulls the candidate module out of an LLM reply: fenced or not, one block or several, or a clear reason why not."""

from __future__ import annotations

import ast
import re

# An unterminated last fence (a reply cut off by max_tokens) still yields its code.
_FENCE = re.compile(r"(```|~~~)[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:^\1[ \t]*$|\Z)", re.S | re.M)
_CODE_LANGS = {"", "python", "py", "python3", "triton"}


class NoCodeInReply(ValueError):
    """The reply holds no usable code; the message is the reason fed back to the LLM."""


def extract_code(reply: str, entry: str) -> str:
    """Return the Python module in `reply` that defines `entry` (ModelNew / kernel_function / a test's main)."""
    blocks = [m.group(3) for m in _FENCE.finditer(reply) if m.group(2).lower() in _CODE_LANGS]
    if not blocks:
        bare = _bare_code(reply)
        if bare is None:
            raise NoCodeInReply("the reply contains no code block; answer with one ```python block holding the module")
        blocks = [bare]
    with_entry = [b for b in blocks if _defines(b, entry)]
    if with_entry:
        # LLMs often show a draft, then a corrected version: the last complete module wins.
        chosen = with_entry[-1]
        if "@triton.jit" not in chosen and entry != "main":
            helpers = [b for b in blocks if "@triton.jit" in b and b is not chosen]
            chosen = "\n\n".join([*helpers, chosen])
        return chosen.strip() + "\n"
    joined = "\n\n".join(blocks)
    if _defines(joined, entry):
        return joined.strip() + "\n"
    raise NoCodeInReply(f"the reply's code does not define `{entry}`; the module must define it")


def _defines(code: str, entry: str) -> bool:
    if entry == "main":
        return bool(code.strip())
    return re.search(rf"^\s*(class|def)\s+{re.escape(entry)}\b", code, re.M) is not None


def _bare_code(reply: str) -> str | None:
    """Unfenced replies: the text from the first import/decorator line on, if that parses as Python."""
    lines = reply.splitlines()
    for start, line in enumerate(lines):
        if re.match(r"^(import |from |@triton|def |class )", line):
            candidate = "\n".join(lines[start:])
            try:
                ast.parse(candidate)
            except SyntaxError:
                return None
            return candidate
    return None
