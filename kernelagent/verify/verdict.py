"""What a verification decides, in one JSON-native shape that state, reports and refine prompts share."""

from __future__ import annotations

from typing import TypedDict

# The failure classes fed back to refine (and shown in reports). A candidate passes only with none of them.
SYNTAX_ERROR = "syntax_error"
POLICY_VIOLATION = "policy_violation"  # static (AST) rule or the runtime op guard
COMPILE_ERROR = "compile_error"
RUNTIME_ERROR = "runtime_error"
TIMEOUT = "timeout"
NUMERICAL_MISMATCH = "numerical_mismatch"
INTERFACE_ERROR = "interface_error"  # ModelNew cannot be built, state_dict does not load, wrong shape/dtype/device
NO_CODE = "no_code"  # the LLM reply held no usable module
TAMPER = "tamper"  # the candidate interfered with the harness (early exit, patched functions, forged output)
RESOURCE_LIMIT = "resource_limit"
# The CPU interpreter lacks a feature the GPU compiler has (inline PTX, an extern call, ...): no bug of the kernel's,
# so it is not sent back to the LLM; a GPU run would judge the candidate. details["feature"] names the feature.
INTERPRETER_UNSUPPORTED = "interpreter_unsupported"

FAILURE_CLASSES = (
    SYNTAX_ERROR,
    POLICY_VIOLATION,
    COMPILE_ERROR,
    RUNTIME_ERROR,
    TIMEOUT,
    NUMERICAL_MISMATCH,
    INTERFACE_ERROR,
    NO_CODE,
    TAMPER,
    RESOURCE_LIMIT,
    INTERPRETER_UNSUPPORTED,
)

# Failures that say nothing about the kernel's correctness: refining on them would chase a non-bug.
NOT_REFINABLE = (INTERPRETER_UNSUPPORTED,)


class Verdict(TypedDict, total=False):
    passed: bool
    failure_class: str | None
    reason: str  # one line
    evidence: str  # the trimmed traceback, mismatch sample or rule list the LLM sees
    rule: str | None  # the policy rule, when failure_class is policy_violation
    wall_s: float
    details: dict  # max errors, launches, ops seen, sandbox facts


def passed(reason: str = "all checks passed", **details: object) -> Verdict:
    return Verdict(passed=True, failure_class=None, reason=reason, evidence="", rule=None, details=dict(details))


def failed(failure_class: str, reason: str, evidence: str = "", rule: str | None = None, **details: object) -> Verdict:
    assert failure_class in FAILURE_CLASSES, failure_class
    return Verdict(
        passed=False, failure_class=failure_class, reason=reason, evidence=evidence, rule=rule, details=dict(details)
    )
