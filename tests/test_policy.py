"""Tests for the static anti-cheat policy and for the truthfulness of the candidate corpus (tests/corpus).

The corpus manifest says which layer must reject each adversarial candidate.  Here we check (a) the static policy
on every entry, and (b) by actually running candidates under the Triton CPU interpreter, that honest candidates are
correct and do no PyTorch compute at runtime, and that every "runtime layer" candidate really misbehaves the way the
manifest says, and that "runtime_guard" candidates compute correctly but with PyTorch ops on the forward path.
All runtime checks share one interpreter subprocess (torch/triton imports dominate the cost), with a watchdog for the
hang and an address-space cap for the 64 GiB allocation.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from kernelagent.verify.policy import RULES, Violation, check_policy

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
RUNTIME_REASONS = {"numerical_mismatch", "runtime_error", "timeout", "wrong_shape", "wrong_dtype", "resource_limit"}
GUARD = "runtime_guard:torch_compute"


def _rules(source: str, entry: str = "ModelNew") -> set[str]:
    return {v.rule for v in check_policy(textwrap.dedent(source), entry=entry)}


# ----------------------------------------------------------------------------------------------------------------------
# Manifest-driven policy checks


def test_manifest_is_consistent():
    names = [e["candidate"] for e in MANIFEST]
    assert len(names) == len(set(names))
    on_disk = {str(p.relative_to(CORPUS)) for d in ("honest", "adversarial") for p in (CORPUS / d).glob("*.py")}
    assert on_disk == set(names)
    honest = [e for e in MANIFEST if e["expected"] == "pass"]
    assert len(honest) >= 8 and {e["problem"] for e in honest} == {
        str(p.relative_to(CORPUS)) for p in (CORPUS / "problems").glob("*.py")}
    for e in MANIFEST:
        assert (CORPUS / e["problem"]).exists() and e["trick"]
        reason = e["reason"]
        if e["expected"] == "pass":
            assert reason is None
        else:
            assert reason in RUNTIME_REASONS or reason == GUARD or reason.removeprefix("policy_violation:") in RULES


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda e: e["candidate"])
def test_policy_on_corpus(entry):
    violations = check_policy((CORPUS / entry["candidate"]).read_text())
    reason = entry["reason"]
    if reason is None or reason in RUNTIME_REASONS or reason == GUARD:
        # honest code must be clean; runtime-layer / guard candidates pass the static policy by design
        assert violations == [], violations
    else:
        assert reason.removeprefix("policy_violation:") in {v.rule for v in violations}, violations
    for v in violations:
        assert v.rule in RULES and v.line >= 0 and v.message.endswith(".")


# ----------------------------------------------------------------------------------------------------------------------
# Running the corpus under the Triton interpreter

RUNNER = r"""
import importlib.util, json, sys
import torch
from torch.overrides import TorchFunctionMode

# torch functions a wrapper may call (allocation, views, metadata) plus what the interpreter itself uses
BENIGN = {"__get__", "__getitem__", "__setitem__", "__len__", "contiguous", "data_ptr", "empty", "empty_like",
          "empty_strided", "zeros", "zeros_like", "ones", "full", "full_like", "new_empty", "new_zeros", "size",
          "stride", "storage_offset", "untyped_storage", "view", "reshape", "to", "numel", "dim", "is_contiguous",
          "element_size", "item", "clone", "detach", "copy_", "t", "transpose", "permute", "unsqueeze", "squeeze",
          "flatten", "expand", "fill_", "zero_", "__format__", "__repr__"}

class Recorder(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.seen = set()
    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.seen.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

def run(i, cand, prob, sizes, special):
    p, c = load(prob, f"problem_{i}"), load(cand, f"candidate_{i}")
    torch.manual_seed(0)
    ref = p.Model(*p.get_init_inputs())
    torch.manual_seed(0)
    new = c.ModelNew(*p.get_init_inputs())
    new.load_state_dict(ref.state_dict())
    ops = set()
    # two fresh draws, neither of the "popular" seeds; a third at the sizes the manifest names, or with exact zeros,
    # from a seed of this entry's own: with a shared one, a candidate that leaves rows of torch.empty unwritten was
    # once handed the freed memory of the entry before it, holding the very outputs of the same draw, and "passed"
    third_seed = 4321 + i
    for seed, at in ((1234, {}), (5678, {}), *([(third_seed, sizes)] if sizes or special else [])):
        for name, value in at.items():
            setattr(p, name, value)
        torch.manual_seed(seed)
        inputs = p.get_inputs()
        if special == "zeros" and seed == third_seed:
            inputs = [t.masked_fill(torch.rand_like(t) < 0.05, 0) for t in inputs]
        if special == "grid" and seed == third_seed:  # ties and exact halves
            inputs = [torch.round(t * 2) / 2 for t in inputs]
        expected = ref(*[t.clone() for t in inputs])
        print("CALL", flush=True)
        given = [t.clone() for t in inputs]
        with Recorder() as rec:
            got = new(*given)
        ops |= rec.seen - BENIGN
        if any(not torch.equal(a, b) for a, b in zip(given, inputs)):
            return "numerical_mismatch", ops  # changed an input, which the reference never does here
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return "wrong_shape", ops
        if got.dtype != expected.dtype:
            return "wrong_dtype", ops
        try:
            torch.testing.assert_close(got, expected)
        except AssertionError:
            return "numerical_mismatch", ops
    return "pass", ops

for i, (cand, prob, sizes, special) in enumerate(json.loads(sys.argv[1])):
    print("START " + cand, flush=True)
    ops = set()
    try:
        status, ops = run(i, cand, prob, sizes, special)
    except MemoryError:
        status = "resource_limit"
    except Exception as e:
        status = "resource_limit" if "allocate memory" in str(e) else "runtime_error"
    print("RESULT " + json.dumps([cand, status, sorted(ops)]), flush=True)
"""


def _special_draw(entry: dict) -> str | None:
    """The extra draw an entry is wrong on: exact zeros or a grid of halves (ties), else None."""
    return "zeros" if entry.get("wrong_with_zeros") else "grid" if entry.get("wrong_on_grid") else None


def _limit_memory():  # runs in the child before exec: address-space cap so the 64 GiB allocation fails fast
    resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))


class _Group:
    """A runner subprocess over several candidates. A watchdog kills it when one forward call runs longer than
    call_timeout and records that candidate as a timeout."""

    def __init__(self, entries, call_timeout=None, mem_limit=False):
        self.entries, self.results, self.log = entries, {}, []
        self.current, self.call_started = None, None
        env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        pairs = [(e["candidate"], e["problem"], e.get("wrong_at_sizes", {}), _special_draw(e)) for e in entries]
        self.proc = subprocess.Popen([sys.executable, "-c", RUNNER, json.dumps(pairs)], cwd=CORPUS, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=_limit_memory if mem_limit else None)
        threading.Thread(target=self._pump, daemon=True).start()
        if call_timeout:
            threading.Thread(target=self._watchdog, args=(call_timeout,), daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.log.append(line)
            if line.startswith("START "):
                self.current, self.call_started = line[6:], None
            elif line == "CALL":
                self.call_started = time.monotonic()
            elif line.startswith("RESULT "):
                cand, status, ops = json.loads(line[7:])
                self.results[cand], self.call_started = (status, ops), None

    def _watchdog(self, call_timeout):
        while self.proc.poll() is None:
            started = self.call_started
            if started is not None and time.monotonic() - started > call_timeout:
                self.results[self.current] = ("timeout", [])
                self.proc.kill()
            time.sleep(0.1)

    def collect(self, deadline: float) -> dict[str, tuple[str, list[str]]]:
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        time.sleep(0.05)  # let the pump thread drain the last lines
        missing = {e["candidate"] for e in self.entries} - set(self.results)
        assert not missing, f"no result for {missing}; runner output:\n" + "\n".join(self.log[-40:])
        return self.results


@pytest.fixture(scope="module")
def runtime_results():
    # One interpreter process for everything (the machine has ~1 core of throughput; torch+triton imports dominate),
    # under an address-space cap, with the hang last: the watchdog kills the process once its forward overruns.
    honest = [e for e in MANIFEST if e["expected"] == "pass"]
    runtime = [e for e in MANIFEST if e["reason"] in RUNTIME_REASONS | {GUARD}]
    ordered = honest + sorted(runtime, key=lambda e: e["reason"] == "timeout")
    return _Group(ordered, call_timeout=4.0, mem_limit=True).collect(time.monotonic() + 120)


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["expected"] == "pass"], ids=lambda e: e["candidate"])
def test_honest_candidate_is_correct_under_interpreter(entry, runtime_results):
    status, torch_ops = runtime_results[entry["candidate"]]
    assert status == "pass"
    assert torch_ops == [], f"honest candidate did PyTorch compute at runtime: {torch_ops}"


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["reason"] in RUNTIME_REASONS],
                         ids=lambda e: e["candidate"])
def test_runtime_layer_candidate_really_misbehaves(entry, runtime_results):
    status, _ = runtime_results[entry["candidate"]]
    assert status == entry["reason"]


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e["reason"] == GUARD], ids=lambda e: e["candidate"])
def test_guard_candidate_computes_with_torch_at_runtime(entry, runtime_results):
    # correct output, clean static policy, but PyTorch compute ops show up on the forward path at runtime
    status, torch_ops = runtime_results[entry["candidate"]]
    assert status == "pass" and torch_ops, (status, torch_ops)


# ----------------------------------------------------------------------------------------------------------------------
# Focused unit tests

KERNEL = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def k(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=offs < n), mask=offs < n)
"""


def _model(forward_body: str, extra: str = "", init: str = "") -> str:
    init_src = f"    def __init__(self):\n        super().__init__()\n{textwrap.indent(textwrap.dedent(init), ' ' * 8)}\n" \
        if init else ""
    return KERNEL + textwrap.dedent(extra) + "\n\nclass ModelNew(nn.Module):\n" + init_src + \
        "    def forward(self, x, y=None):\n" + textwrap.indent(textwrap.dedent(forward_body), " " * 8)


@pytest.mark.parametrize("body", [
    # shape/grid integer arithmetic, triton.cdiv, allocation and views
    """
    M, K = x.shape
    N = x.shape[0] * x.shape[1]
    n = x.numel()
    blocks = (n + 255) // 256
    out = torch.empty(x.shape[:-1] + (K * 2,), device=x.device, dtype=torch.float32)
    grid = (triton.cdiv(M, 16) * triton.cdiv(N, 16), blocks)
    k[grid](x.contiguous().view(-1), out, n, BLOCK=min(1024, triton.next_power_of_2(n)))
    assert x.is_contiguous() and x.dim() == 2 and x.shape == out.shape
    if y is not None and x.dtype == torch.float16:
        out = out.to(torch.float16)
    return out.reshape(M, -1).t().contiguous()
    """,
    # tutorial grid lambda over META and an enumerate over tensors
    """
    out = torch.empty_like(x)
    grid = lambda META: (triton.cdiv(x.numel(), META["BLOCK"]) * 1,)
    for i, t in enumerate([x, out]):
        k[(i + 1,)](t, out, t.numel() // 2, BLOCK=64)
    k[grid](x, out, x.numel(), BLOCK=128)
    return out
    """,
    # zeros accumulator, scalar conversion outside loops, math on ints
    """
    acc = torch.zeros(1, device=x.device, dtype=torch.float32)
    scale = 1.0 / math.sqrt(x.shape[-1])
    k[(1,)](x, acc, x.numel(), BLOCK=int(scale * 1024))
    return acc.reshape(())
    """,
])
def test_wrapper_idioms_are_allowed(body):
    assert check_policy(_model(body, extra="import math\n")) == []


def test_parameters_passed_to_kernel_and_launch_only_helper_are_allowed():
    src = _model(
        "return _launch(x, self.linear.weight, self.weight)",
        extra="""
        def _launch(t, w, w2):
            out = torch.empty((t.shape[0], w.shape[0]), device=t.device, dtype=t.dtype)
            k[(triton.cdiv(t.numel(), 256),)](t, w, out, w2.stride(0), t.shape[1], BLOCK=256)
            return out
        """,
        init="""
        self.linear = nn.Linear(4, 4)
        self.weight = nn.Parameter(torch.randn(4, 4) * 0.1)  # torch compute in __init__ is fine
        """)
    assert check_policy(src) == []


def test_module_level_configs_autotune_and_device_are_allowed():
    src = '''
    """Docstring."""
    from __future__ import annotations
    import torch
    import torch.nn as nn
    import triton
    import triton.language as tl
    from triton.language.extra import libdevice

    DEVICE = triton.runtime.driver.active.get_active_torch_device()
    BLOCK = 2 ** 10
    CONFIGS = [triton.Config({"BLOCK": b}, num_warps=w) for b in (64, 128) for w in (2, 4)]


    @triton.autotune(configs=CONFIGS, key=["n"])
    @triton.jit
    def k(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n)
        y = x @ x if n > 1 else -x  # operators inside a kernel are never torch compute
        tl.store(out_ptr + offs, libdevice.tanh(y), mask=offs < n)


    def kernel_function(x: torch.Tensor, n: int) -> torch.Tensor:
        out = torch.empty_like(x)
        k[lambda meta: (triton.cdiv(n, meta["BLOCK"]),)](x, out, n)
        return out
    '''
    assert check_policy(textwrap.dedent(src), entry="kernel_function") == []
    assert _rules(src, entry="ModelNew") == {"missing_entry"}


@pytest.mark.parametrize("body, extra, init", [
    ("lin = self.linear\nreturn lin(x)", "", "self.linear = nn.Linear(4, 4)"),
    ("for layer in self.layers:\n    x = layer(x)\nreturn x", "", "self.layers = nn.ModuleList([nn.ReLU()])"),
    ("return self.act.forward(x)", "", "self.act = nn.ReLU()"),
    ("return x.__add__(y)", "", ""),
    ("return torch.Tensor.add(x, y)", "", ""),
    ("return -x", "", ""),
    ("return x > 0", "", ""),
    ("return functools.reduce(lambda a, b: a, x.split(1), x)", "import functools\n", ""),
    ("return math.prod(x.split(1))", "import math\n", ""),
    ("return self.w * 2", "", "self.w = nn.Parameter(torch.ones(3))"),
    ("_stash(x)\nreturn _double()", "_S = None\ndef _stash(t):\n    global _S\n    _S = t\ndef _double():\n    return _S * 2\n", ""),
    ("return _Helper(x).run()", "class _Helper:\n    def __init__(self, t):\n        self.t = t\n    def run(self):\n        return self.t + 1\n", ""),
    ("ops = [torch.relu]\nreturn ops[0](x)", "", ""),
    ("m = getattr(self, 'act')\nreturn m(x)", "", "self.act = torch.sigmoid"),
])
def test_hidden_torch_compute_is_flagged(body, extra, init):
    assert "torch_compute_in_forward" in _rules(_model(body, extra, init))


AUTOGRAD = KERNEL + """

class _Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        out = torch.empty_like(x)
        n = x.numel()
        k[(triton.cdiv(n, 256),)](x, out, n, BLOCK=min(256, n))
        ctx.save_for_backward(x, w)
        return out


_apply = _Fn.apply


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return _apply(x, self.w)
"""


def test_autograd_function_indirection_is_followed():
    # the tutorial pattern `layer_norm = LayerNorm.apply`: its forward is on the forward path
    assert check_policy(AUTOGRAD) == []
    cheat = AUTOGRAD.replace("ctx.save_for_backward(x, w)", "out = x * w.sum()")
    assert _rules(cheat) == {"torch_compute_in_forward"}


def test_aliased_imports_and_shadowed_builtins():
    aliased = KERNEL.replace("import triton\n", "import triton as tr\n").replace("@triton.jit", "@tr.jit").replace(
        "import triton.language as tl", "from triton import language as tl")
    aliased += "\ndef kernel_function(x):\n    out = torch.empty_like(x)\n    k[(1,)](x, out, 1, BLOCK=8)\n    return out\n"
    assert check_policy(aliased, entry="kernel_function") == []
    assert "torch_compute_in_forward" in _rules(aliased.replace("return out", "return tr.language.sum(x) + x"),
                                                entry="kernel_function")
    # a module-level call that looks like a builtin but is candidate code runs at import
    assert "early_exit" in _rules(KERNEL + "\ndef int(v):\n    print('PASS')\n    return v\n\nN = int(3)\n")
    assert "early_exit" not in _rules(KERNEL + "\nN = int(3)\nCFG = [triton.Config({'BLOCK': b}) for b in (64, 128)]\n")


def test_torch_in_init_and_unreachable_helpers_is_not_flagged():
    src = _model("out = torch.empty_like(x)\nk[(1,)](x, out, 1, BLOCK=16)\nreturn out",
                 extra="def _reference(t):\n    return torch.relu(t) + 1  # never called from forward\n",
                 init="self.register_buffer('table', torch.arange(8).float().exp())")
    assert check_policy(src) == []


def test_function_mode_entry():
    good = KERNEL + "\ndef kernel_function(x):\n    out = torch.empty_like(x)\n    k[(1,)](x, out, 1, BLOCK=16)\n    return out\n"
    assert check_policy(good, entry="kernel_function") == []
    assert _rules(good) == {"missing_entry"}
    bad = KERNEL + "\ndef kernel_function(x, y):\n    return _add(x, y)\n\ndef _add(a, b):\n    return a + b\n"
    assert _rules(bad, entry="kernel_function") == {"torch_compute_in_forward"}
    assert _rules(KERNEL, entry="kernel_function") == {"missing_entry"}


def test_try_except_rules():
    # re-raising is fine; a handler around a helper that (transitively) launches is not
    ok = _model("out = torch.empty_like(x)\ntry:\n    _go(x, out)\nexcept ValueError as e:\n    raise RuntimeError('x') from e\n"
                "return out", extra="def _go(a, o):\n    k[(1,)](a, o, 1, BLOCK=16)\n")
    assert check_policy(ok) == []
    bad = ok.replace("raise RuntimeError('x') from e", "out = None")
    assert _rules(bad) == {"fallback_try_except"}
    swallow = _model("try:\n    n = x.numel()\nexcept:\n    n = 0\nreturn n")
    assert "fallback_try_except" in _rules(swallow)


@pytest.mark.parametrize("src, rule", [
    ('if __name__ == "__main__":\n    print(1)\n', "early_exit"),
    ("def deco(f):\n    return f\n\n@deco\ndef g():\n    pass\n", "early_exit"),
    ("def g(a=print('PASS')):\n    pass\n", "early_exit"),
    ("torch.manual_seed(0)\n", "early_exit"),
    ("class M(metaclass=type):\n    pass\n", "introspection"),
    ("import numpy as np\n", "forbidden_import"),
    ("from torch import _C\n", "forbidden_import"),
    ("from . import reference\n", "forbidden_import"),
    ("import torch.utils\n", "forbidden_import"),
    ("def f(x):\n    return x.__class__.__subclasses__()\n", "introspection"),
    ("def f():\n    return __builtins__\n", "environment_access"),
    ("F2 = torch.nn.functional\nF2.relu = None\n", "introspection"),
    ("def f():\n    quit()\n", "early_exit"),
    ("def f():\n    return torch.load('w.pt')\n", "file_or_process_access"),
])
def test_module_wide_rules(src, rule):
    assert rule in _rules(KERNEL + "\n" + src)


def test_violations_are_sorted_complete_and_syntax_errors_raise():
    src = (CORPUS / "adversarial/relu__sys_exit.py").read_text()
    vs = check_policy(src)
    assert vs == sorted(vs, key=lambda v: (v.line, v.rule)) and all(isinstance(v, Violation) for v in vs)
    assert {"forbidden_import", "early_exit", "file_or_process_access"} <= {v.rule for v in vs}
    line = src.splitlines().index("sys.exit(0)") + 1
    assert any(v.rule == "early_exit" and v.line == line for v in vs)
    with pytest.raises(SyntaxError):
        check_policy("def forward(:\n")
    assert set(RULES) == {"no_triton_kernel", "missing_entry", "torch_compute_in_forward", "forbidden_import",
                          "file_or_process_access", "environment_access", "introspection", "fallback_try_except",
                          "early_exit", "not_allowed", "source_encoding"}


# ----------------------------------------------------------------------------------------------------------------------
# The allow-list: routes nobody listed are closed; what published Triton does is open


@pytest.mark.parametrize("src", [
    "def f():\n    return torch.serialization.pickle.loads(b'')\n",
    "import dataclasses\n\ndef f():\n    return dataclasses._create_fn('f', [], 'return 1')\n",
    "def f():\n    return torch.utils.data.dataloader.threading.Thread\n",
    "import torch.nn.functional as F\n\ndef f():\n    return F.torch.serialization.pickle\n",
    "def f():\n    m = torch\n    return m.serialization.pickle.loads(b'')\n",
    "import typing\n\ndef f(g):\n    return typing.get_type_hints(g)\n",
    "def f(x):\n    return x.untyped_storage().from_file('/etc/passwd', False, 8)\n",
    "def f(x):\n    return getattr(x, 'numpy')()\n",
    "def f():\n    return exec\n",
    "def f():\n    return memoryview(b'')\n",
    "import torch.nn.functional as F\n\ndef f(x):\n    return F.handle_torch_function(f, (x,), x)\n",
    "def f(x):\n    return x._cdata\n",
    "def f():\n    return torch.multiprocessing.Process\n",
    "def f():\n    return triton.knobs\n",
    "def f():\n    return triton.language.core.builtins.exec\n",
    "import functools\n\ndef f():\n    return functools.partial(torch.compile)\n",
    "def f():\n    k.src = 'import os'\n    return k\n",
])
def test_unlisted_routes_are_refused(src):
    assert "not_allowed" in _rules(KERNEL + "\n" + src)


@pytest.mark.parametrize("cookie", ["# coding: utf-7\n", "# -*- coding: latin-1 -*-\n", "#!/usr/bin/env python\n# vim: set fileencoding=utf-7 :\n"])
def test_coding_cookie_is_refused(cookie):
    # in UTF-7, `+AAo-` is a newline: the comment below would become code when Python reads the file
    src = cookie + KERNEL + "\n# harmless +AAo-import os\n"
    assert [v.rule for v in check_policy(src)] == ["source_encoding"]
    assert [v.rule for v in check_policy("x = 1\x00\n")] == ["source_encoding"]
    assert "source_encoding" not in _rules(KERNEL + "\n# a comment about coding: utf-7 on line 9\n")


PUBLISHED = """
import torch
import torch.nn as nn
import triton
import triton.language as tl

try:
    from triton.language.extra.libdevice import rsqrt
except ModuleNotFoundError:
    from triton.language.extra.cuda.libdevice import rsqrt


def is_hip() -> bool:
    return torch.version.hip is not None


def infer_device():
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def calculate_settings(n):
    MAX_FUSED_SIZE = 65536
    BLOCK_SIZE = triton.next_power_of_2(n)
    if BLOCK_SIZE > MAX_FUSED_SIZE:
        raise RuntimeError(f"Cannot launch Triton kernel since n = {n} exceeds the maximum")
    num_warps = 4
    if BLOCK_SIZE >= 32768:
        num_warps = 32 if not is_hip() else 16
    elif BLOCK_SIZE >= 2048:
        num_warps = 8
    return BLOCK_SIZE, num_warps


def is_cuda():
    return triton.runtime.driver.active.get_current_target().backend == "cuda"


def get_cuda_autotune_config():
    return [triton.Config({"BLOCK": b}, num_warps=4) for b in (64, 128)]


def get_autotune_config():
    if is_cuda():
        return get_cuda_autotune_config()
    configs = []
    for b in (32, 64):
        configs.append(triton.Config({"BLOCK": b}, num_warps=2))
    return configs


@triton.autotune(configs=get_autotune_config(), key=["n"])
@triton.heuristics({"EVEN": lambda args: args["n"] % args["BLOCK"] == 0})
@triton.jit
def k(x_ptr, out_ptr, n, scale, BLOCK: tl.constexpr, EVEN: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n).to(tl.float32)
    y = rsqrt(x * x + 1.0) * scale + tl.math.exp(x) + tl.extra.cuda.libdevice.tanh(x) * 0
    tl.store(out_ptr + offs, y, mask=offs < n)


class ModelNew(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.gn = nn.GroupNorm(groups, channels)

    def forward(self, x):
        out = torch.empty_like(x)
        group_size = self.gn.num_channels // self.gn.num_groups
        settings = calculate_settings(x.shape[-1])
        grid = lambda meta: (triton.cdiv(x.numel(), meta["BLOCK"]),)
        k[grid](x, out, x.numel(), float(group_size) * self.gn.eps + settings[0] * 0)
        return out
"""


def test_published_triton_idioms_are_accepted():
    assert check_policy(PUBLISHED) == []
    assert check_policy(PUBLISHED.replace("return configs", "print('PASS')\n    return configs")) != []


TMA = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton.tools.tensor_descriptor import TensorDescriptor


def alloc_fn(size: int, alignment: int, stream):
    return torch.empty(size, device="cuda", dtype=torch.int8)


@triton.jit
def k(desc, out_ptr, n, NUM_SMS: tl.constexpr, BLOCK: tl.constexpr):
    start = tl.program_id(0)
    for tile in tl.range(start, tl.cdiv(n, BLOCK), NUM_SMS, flatten=True):
        x = desc.load([tile * BLOCK])
        tl.store(out_ptr + tile * BLOCK + tl.arange(0, BLOCK), x)


class ModelNew(nn.Module):
    def forward(self, x):
        out = torch.empty_like(x)
        triton.set_allocator(alloc_fn)
        NUM_SMS = torch.cuda.get_device_properties("cuda").multi_processor_count
        desc = TensorDescriptor.from_tensor(x, [64])
        k[(min(NUM_SMS, triton.cdiv(x.numel(), 64)),)](desc, out, x.numel(), NUM_SMS=NUM_SMS, BLOCK=64)
        return out
'''


def test_persistent_and_tma_kernels_are_accepted():
    assert check_policy(TMA) == []
