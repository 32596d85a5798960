"""Errors a user can hit, each with the exit code the CLI returns for it (documented in the README)."""

from __future__ import annotations


class KernelAgentError(Exception):
    """Base class: a message that says what to do, and the process exit code that goes with it."""

    exit_code = 1


class UsageError(KernelAgentError):
    """An invalid option value or combination."""

    exit_code = 2


class SpecError(KernelAgentError):
    """The spec file is missing, empty, or its reference does not define what the harness needs."""

    exit_code = 2


class ReferenceError_(KernelAgentError):
    """The PyTorch reference itself fails to build or run, so no candidate can be judged."""

    exit_code = 2


class LLMUnavailable(KernelAgentError):
    """No usable LLM: no API key, endpoint unreachable, model unknown, or retries exhausted."""

    exit_code = 3


class RunNotFound(KernelAgentError):
    """A run id that has no run folder or checkpoint."""

    exit_code = 2


class NoKernelPassed(KernelAgentError):
    """Every seed spent its budget without a verified kernel."""

    exit_code = 4
