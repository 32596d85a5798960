"""The executor interface: verification (and other harness work) as calls that may run here or elsewhere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path


class Executor(ABC):
    """`verify`/`verify_test` have exactly the signatures of verify_reference_candidate/verify_test_candidate;
    the `submit_*` twins return a Future, for callers that verify several candidates at once."""

    kind: str = "?"

    @abstractmethod
    def submit(self, fn: Callable, args: tuple = (), kwargs: dict | None = None, *, device: str = "cpu") -> Future:
        """Run `fn(*args, **kwargs)` (an importable function) where this executor runs work; one GPU if cuda."""

    @abstractmethod
    def submit_verify(
        self,
        code: str,
        harness: dict,
        workdir: Path,
        *,
        timeout_s: float,
        tf32: bool = False,
        rtol: float | None = None,
        atol: float | None = None,
    ) -> Future:
        """Future of verify_reference_candidate(...)'s verdict; the workdir is filled as if it ran here."""

    @abstractmethod
    def submit_verify_test(self, code: str, harness: dict, workdir: Path, *, timeout_s: float) -> Future:
        """Future of verify_test_candidate(...)'s verdict (specs without a reference: the frozen LLM-written test)."""

    def verify(
        self,
        code: str,
        harness: dict,
        workdir: Path,
        *,
        timeout_s: float,
        tf32: bool = False,
        rtol: float | None = None,
        atol: float | None = None,
    ) -> dict:
        return self.submit_verify(code, harness, workdir, timeout_s=timeout_s, tf32=tf32, rtol=rtol, atol=atol).result()

    def verify_test(self, code: str, harness: dict, workdir: Path, *, timeout_s: float) -> dict:
        return self.submit_verify_test(code, harness, workdir, timeout_s=timeout_s).result()
