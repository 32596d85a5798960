"""Static (AST) anti-cheat policy for LLM-written Triton candidates.

A candidate must do its math inside ``@triton.jit`` kernels; the Python wrapper may only allocate, reshape and launch.
One pass collects facts (import aliases, functions, classes and their nn-layer/tensor attributes); a by-name call graph
is built from the entry point (``ModelNew.forward`` or ``kernel_function``); a flow-insensitive guess of which names
hold tensors separates tensor operators from shape arithmetic; then small rule functions report violations.
The policy flags what it can see and never runs the candidate.  Tensors reaching Python operators through routes it
does not model (lambda / nested-def parameters, exception payloads) and torch calls inside @triton.jit bodies (plain
Python under TRITON_INTERPRET=1) are left to the runtime torch-op guard; tests/corpus has one candidate for each.
"""

from kernelagent.verify.policy.rules import RULES, Violation, check_policy

__all__ = ["RULES", "Violation", "check_policy"]
