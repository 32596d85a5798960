"""The one way the graph judges code: verify, autotune and optimise all come through here, so every verdict of a run
uses the same executor (local or Ray), tolerances, timeout, device and warm/cold switch.

Nodes build a `Judging` from the run's context once and call it; none of them calls the verifier directly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kernelagent.executors import Executor, get_executor
from kernelagent.verify.verdict import Verdict


@dataclass(frozen=True)
class Judging:
    executor: Executor
    timeout_s: float
    tf32: bool = False
    rtol: float | None = None
    atol: float | None = None

    @classmethod
    def of(cls, ctx) -> Judging:  # noqa: ANN001 - a RunContext
        return cls(get_executor(ctx), ctx.verify_timeout_s, ctx.allow_tf32, ctx.rtol, ctx.atol)

    def verify(self, code: str, harness: dict, workdir: Path) -> Verdict:
        """The verdict on `code` under `harness` (the reference's judge, or the frozen LLM-written test); the
        device and the warm/cold switch are the harness's own."""
        if harness["mode"] == "reference":
            return self.executor.verify(
                code, harness, Path(workdir), timeout_s=self.timeout_s, tf32=self.tf32, rtol=self.rtol, atol=self.atol
            )
        return self.executor.verify_test(code, harness, Path(workdir), timeout_s=self.timeout_s)

    def verifier(self, harness: dict, workdir: Path) -> Callable[[str], dict]:
        """verify() as a one-argument callable (for autotune), one folder per call."""
        counter = itertools.count()

        def verify(code: str) -> dict:
            return dict(self.verify(code, harness, Path(workdir) / f"v{next(counter):02d}"))

        return verify
