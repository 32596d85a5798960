"""Errors a user can hit, each with the exit code the CLI returns for it (the table is in the README)."""

from __future__ import annotations

import errno
import sqlite3

# Exit codes that have no exception class of their own.
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: an exception KernelAgent did not expect
EXIT_BUDGET = 5  # kernelagent.budget.BudgetExceeded
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
EXIT_HANGUP = 129  # SIGHUP: the terminal or session went away
EXIT_TERMINATED = 143  # SIGTERM: `timeout`, `docker stop`, Slurm

INTERRUPTED_EXIT_CODES = frozenset({EXIT_INTERRUPTED, EXIT_HANGUP, EXIT_TERMINATED})

# Exit codes after which `resume RUN_ID` continues the run where it stopped.
RESUMABLE_EXIT_CODES = frozenset({3, EXIT_BUDGET, 6, EXIT_INTERRUPTED, EXIT_HANGUP, EXIT_TERMINATED})


class KernelAgentError(Exception):
    """Base class: a message that says what to do, and the process exit code that goes with it."""

    exit_code = EXIT_INTERNAL


class UsageError(KernelAgentError):
    """An invalid option value or combination."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration file or variable that cannot be used: unknown key, wrong type, unparsable file."""


class SpecError(KernelAgentError):
    """The spec file is missing, empty, or its reference does not define what the harness needs."""

    exit_code = 2


class ReferenceError_(KernelAgentError):
    """The PyTorch reference itself fails to build or run, so no candidate can be judged."""

    exit_code = 2


class LLMUnavailable(KernelAgentError):
    """No usable LLM: no API key, provider package missing, endpoint unreachable, model unknown, retries exhausted."""

    exit_code = 3


class RunNotFound(KernelAgentError):
    """A run id that has no run folder or checkpoint."""

    exit_code = 2


class NoKernelPassed(KernelAgentError):
    """Every seed spent its budget without a verified kernel."""

    exit_code = 4


class NoTrustworthyTest(KernelAgentError):
    """A spec without a reference, and the LLM wrote no test that rejects the deliberately wrong kernels within its
    attempts: there is nothing to verify a kernel against. Not resumable (the stored replies would fail the same way);
    add a PyTorch reference to the spec."""

    exit_code = 8


class EnvironmentFault(KernelAgentError):
    """The machine, not the input or KernelAgent: a full or read-only disk, a corrupt database or run file. Fix what
    the message names, then resume."""

    exit_code = 6


class RunBusy(KernelAgentError):
    """Another live process drives this run or suite; a second driver would double every request and overwrite its
    files."""

    exit_code = 7


class CorruptRunFile(EnvironmentFault):
    """A file the run trusts (run.json, suite.json) exists but cannot be read as what it must be."""


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def environment_fault(err: BaseException, checkpoint_db: str | None = None) -> EnvironmentFault | None:
    """The one-line fault for an error of the machine (disk full, read-only or forbidden folder, I/O error, corrupt
    checkpoint database), or None when `err` is not one (then it is a bug, or someone else's error)."""
    if isinstance(err, sqlite3.DatabaseError):
        return _database_fault(err, checkpoint_db or "the checkpoint database")
    if not isinstance(err, OSError):
        return None
    where = err.filename or "a file"
    if err.errno in _NO_SPACE:
        return EnvironmentFault(f"no space left on the device writing {where}: free some space, then resume")
    if err.errno in _NOT_WRITABLE:
        return EnvironmentFault(f"cannot write {where} ({err.strerror}): make the runs folder writable, or choose "
                                f"another with --runs-dir")
    if err.errno == errno.EIO:
        return EnvironmentFault(f"input/output error on {where}: check the disk, then resume")
    return None


def _database_fault(err: sqlite3.DatabaseError, path: str) -> EnvironmentFault:
    text = str(err)
    if "full" in text:
        return EnvironmentFault(f"no space left on the device for {path} ({text}): free some space, then resume")
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return EnvironmentFault(f"cannot write {path} ({text}): make the runs folder writable, or choose another "
                                f"with --runs-dir")
    if "locked" in text:
        return EnvironmentFault(f"{path} stayed locked by another process ({text}): try again once it is done")
    return EnvironmentFault(f"the checkpoint database {path} is unreadable ({text}): move it aside "
                            f"(mv {path} {path}.corrupt); runs checkpointed in it cannot resume, new runs start a "
                            f"fresh one")
