"""Reading a user's spec (Markdown or a KernelBench problem file) into a Problem."""

from kernelagent.spec.parse import Problem, load_problem

__all__ = ["Problem", "load_problem"]
