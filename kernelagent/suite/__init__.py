"""Suites: many problems (a folder of specs or KernelBench files) run, resumed and tabulated together."""

from kernelagent.suite.discover import SuiteProblem, discover
from kernelagent.suite.runner import Suite, new_suite_id, run_suite
from kernelagent.suite.tables import fast_p, summary, write_tables

__all__ = ["Suite", "SuiteProblem", "discover", "fast_p", "new_suite_id", "run_suite", "summary", "write_tables"]
