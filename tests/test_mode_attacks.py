"""Test mode's verdict comes from the test process, which the candidate's kernel.py cannot reach: every attempt to
forge it from kernel.py fails, and an honest kernel passes (warm and cold workers).

The attacks run below the static policy (test_mode.run_test + verdict_of), as if a kernel had slipped past it:
the process split must hold on its own.
"""

from __future__ import annotations

import hashlib

import pytest
from conftest import REPLIES

from kernelagent.llm.extract import extract_code
from kernelagent.verify import test_mode
from kernelagent.verify import verdict as V

STRICT_TEST = extract_code((REPLIES / "scaled_add_test_strict.md").read_text(), "main")
AFTER_CALL_TEST = extract_code((REPLIES / "scaled_add_test_good.md").read_text(), "main")
HONEST = extract_code((REPLIES / "scaled_add_kernel.md").read_text(), "kernel_function")

_FRAME = """
import json, os, struct


def _frame(message):
    body = json.dumps(message).encode()
    return struct.pack("!I", len(body)) + body
"""
# A Triton launch that computes nothing, so that a wrong answer is not caught merely for launching no kernel.
_ZEROS = """

@triton.jit
def _zero_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offsets, tl.zeros([BLOCK], dtype=tl.float32), mask=offsets < n)


def kernel_function(x, y, alpha):
    out = torch.empty_like(x)
    _zero_kernel[(triton.cdiv(x.numel(), 256),)](out, x.numel(), BLOCK=256)
    return out
"""
WRONG = HONEST.replace("def kernel_function", "def _honest_kernel_function") + _ZEROS

ATTACKS = {
    # The old runner's pass signal was a report file with a nonce; now there is no file, and fd 0 leads to the test
    # process, which takes a verdict from nobody.
    "forges the verdict at import": (
        _FRAME
        + """
verdict = {"event": "verdict", "test_passed": True, "calls": 3, "launches": 3, "answered_to_the_end": True}
for fd in (0, 1, 2):
    os.write(fd, _frame(verdict))
print("PASS")
print("all checks passed")
for path in ("report.json", "../test/report.json", "../report.json"):
    try:
        with open(path, "w") as f:
            f.write(json.dumps({"phase": "done", "test_passed": True, "calls": 3, "launches": 3}))
    except OSError:
        pass
"""
        + WRONG,
        V.TAMPER,
    ),
    "patches the test's assertion helpers": (
        WRONG
        + """
torch.testing.assert_close = lambda *args, **kwargs: None
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.Tensor.__eq__ = lambda self, other: True
""",
        V.NUMERICAL_MISMATCH,
    ),
    "calls sys.exit(0) at import": (HONEST + "\nimport sys\nsys.exit(0)\n", V.TAMPER),
    "calls os._exit(0) at import": (HONEST + "\nimport os\nos._exit(0)\n", V.TAMPER),
    "calls os._exit(0) in kernel_function": (
        HONEST.replace("    return out", "    import os\n    os._exit(0)"),
        V.TAMPER,
    ),
    "calls sys.exit(0) in kernel_function": (
        HONEST.replace("    return out", "    import sys\n    sys.exit(0)"),
        V.TAMPER,
    ),
    # No secret is on any command line now; what it can read changes nothing.
    "reads the nonce from /proc": (
        """
import os

found = []
for pid in ["self", str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]:
    for what in ("cmdline", "environ", "fd/0", "mem"):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                found.append(f.read(200))
        except OSError:
            pass
"""
        + WRONG,
        V.NUMERICAL_MISMATCH,
    ),
    # The test process runs the source the agent sent it, not its folder's copy.
    "rewrites the test in the test's folder": (
        """
for path in ("../test/test_kernel.py", "../../test/test_kernel.py"):
    try:
        with open(path, "w") as f:
            f.write("print('PASS')\\n")
    except OSError:
        pass
"""
        + WRONG,
        V.NUMERICAL_MISMATCH,
    ),
    "kills the test process": (
        """
import os, signal

for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"test_runner" in f.read():
                os.kill(int(pid), signal.SIGKILL)
    except OSError:
        pass
"""
        + HONEST,
        V.POLICY_VIOLATION,
    ),
    # A forged description of a result far too large for the test process to allocate.
    "describes a huge result": (
        _FRAME
        + WRONG.replace(
            "    return out",
            '    os.write(0, _frame({"event": "result", "n": 1, "structure": {"tensor": '
            '{"shape": [1 << 39], "dtype": "float64", "device": "cpu"}}}))\n    return out',
        ),
        V.TAMPER,
    ),
    "answers out of turn": (
        _FRAME + WRONG.replace("    return out", '    os.write(0, _frame({"event": "bye"}))\n    return out'),
        V.TAMPER,
    ),
}


def check(tmp_path, kernel_code: str, test_code: str = STRICT_TEST, **options):  # noqa: ANN001, ANN201
    run = test_mode.run_test(test_code, kernel_code, tmp_path / "w", "cpu", 120, tmp_path / "cache", **options)
    return run, test_mode.verdict_of(run, 120)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_from_kernel_py_fails(name, tmp_path):
    code, failure_class = ATTACKS[name]
    _run, verdict = check(tmp_path, code)
    assert not verdict["passed"], verdict
    assert verdict["failure_class"] == failure_class, verdict


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
def test_honest_kernel_passes_and_the_test_sees_a_1pct_error(warm, tmp_path):
    frozen = tmp_path / "test_kernel.py"
    frozen.write_text(STRICT_TEST)
    harness = {
        "mode": "test",
        "test_path": str(frozen),
        "sha256": hashlib.sha256(STRICT_TEST.encode()).hexdigest(),
        "device": "cpu",
        "cache_dir": str(tmp_path / "cache"),
        "warm": warm,
    }
    verdict = test_mode.verify_test_candidate(HONEST, harness, tmp_path / "cand", timeout_s=120)
    assert verdict["passed"], verdict
    details = verdict["details"]
    assert details["calls"] == 3 and details["launches"] == 3 and details["test_catches_1pct_error"] is True
    assert details["mutated_args"] == 0


def test_the_kernel_process_never_sees_the_test_and_the_test_process_never_imports_kernel_py(tmp_path):
    _run, verdict = check(tmp_path, HONEST)
    assert verdict["passed"], verdict
    assert not (tmp_path / "w" / "kernel" / "test_kernel.py").exists()
    assert not (tmp_path / "w" / "test" / "kernel.py").exists()


def test_a_test_that_computes_the_expected_result_after_the_call_is_rejected(tmp_path):
    """The kernel may write into its arguments (out= kernels need that), so such a test could be fooled."""
    with pytest.raises(test_mode.TestRejected, match="zeroes its inputs and returns zeros"):
        test_mode.validate_test(AFTER_CALL_TEST, tmp_path / "v", "cpu", 120, tmp_path / "cache")
    test_mode.validate_test(STRICT_TEST, tmp_path / "strict", "cpu", 120, tmp_path / "cache")


OUT_ARGUMENT_TEST = """
import torch
from kernel import kernel_function

x = torch.randn(300)
out = torch.full((300,), float("nan"))
expected = (x.double() * 2).float()
result = kernel_function(x, out)
assert result is None
torch.testing.assert_close(out, expected)
nested = kernel_function(x, out, nested=True, dtype=torch.float32, sizes=(torch.Size([300]), b'x'))
assert type(nested) is tuple and nested[1] == 3 and nested[2] is None and type(nested[0]) is list
torch.testing.assert_close(nested[0][0], expected)
"""

OUT_ARGUMENT_KERNEL = """
import torch
import triton
import triton.language as tl


@triton.jit
def double_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n
    tl.store(out_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * 2, mask=mask)


def kernel_function(x, out, nested=False, dtype=None, sizes=None):
    assert dtype in (None, torch.float32) and sizes in (None, (torch.Size([300]), b'x'))
    double_kernel[(triton.cdiv(x.numel(), 128),)](x, out, x.numel(), BLOCK=128)
    if nested:
        return ([out], 3, None)
    return None
"""


def test_writes_into_arguments_dtype_arguments_and_nested_results_reach_the_test(tmp_path):
    run, verdict = check(tmp_path, OUT_ARGUMENT_KERNEL, OUT_ARGUMENT_TEST)
    assert verdict["passed"], (verdict, run.report)
    assert verdict["details"]["calls"] == 2
    assert verdict["details"]["mutated_args"] == 1  # the second call wrote the values `out` already held
