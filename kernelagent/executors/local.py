"""LocalExecutor: verification in this process (each candidate still runs in its own sandboxed child)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from kernelagent.executors.base import Executor


class LocalExecutor(Executor):
    kind = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        # Threads suffice: the heavy work happens in sandboxed child processes, not under the GIL.
        self._pool = ThreadPoolExecutor(max_workers=max_workers or os.cpu_count() or 2, thread_name_prefix="verify")

    def submit(self, fn: Callable, args: tuple = (), kwargs: dict | None = None, *, device: str = "cpu") -> Future:
        return self._pool.submit(fn, *args, **(kwargs or {}))

    def submit_verify(  # noqa: ANN001 - the signature of verify_reference_candidate
        self, code, harness, workdir, *, timeout_s, tf32=False, rtol=None, atol=None
    ) -> Future:
        options = {"timeout_s": timeout_s, "tf32": tf32, "rtol": rtol, "atol": atol}
        return self._pool.submit(lambda: self.verify(code, harness, workdir, **options))

    def submit_verify_test(self, code, harness, workdir, *, timeout_s) -> Future:  # noqa: ANN001
        return self._pool.submit(lambda: self.verify_test(code, harness, workdir, timeout_s=timeout_s))

    # The synchronous forms call directly, in the caller's thread: no hop through the pool.
    def verify(self, code, harness, workdir, *, timeout_s, tf32=False, rtol=None, atol=None) -> dict:  # noqa: ANN001
        from kernelagent.verify.verifier import verify_reference_candidate

        options = {"timeout_s": timeout_s, "tf32": tf32, "rtol": rtol, "atol": atol}
        return verify_reference_candidate(code, harness, Path(workdir), **options)

    def verify_test(self, code, harness, workdir, *, timeout_s) -> dict:  # noqa: ANN001
        from kernelagent.verify.test_mode import verify_test_candidate

        return verify_test_candidate(code, harness, Path(workdir), timeout_s=timeout_s)
