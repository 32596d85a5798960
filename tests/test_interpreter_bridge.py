"""The interpreter bridge: CPU runs treat kernels as the GPU compiler does, and name what the interpreter lacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import ROOT, SOFTMAX_SPEC, rule

from kernelagent.app import start_run
from kernelagent.graph.routing import route_after_verify
from kernelagent.nodes.finish_seed import finish_seed
from kernelagent.prompting import render

SCRIPT = r'''
import json, torch, triton
import triton.language as tl
from kernelagent.verify.interpreter_bridge import install, unsupported_feature
install(); install()  # idempotent
from triton.language.extra import libdevice
from triton.language.extra.cuda import libdevice as cuda_libdevice


@triton.jit
def gaps(x_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = libdevice.tanh(x) + cuda_libdevice.rsqrt(x * x + 1.0) + scale.to(tl.float32)
    for i in tl.range(0, 3):
        y += i.to(tl.float32)
    y += tl.where(libdevice.isnan(x) != 0, 1.0, 0.0)
    tl.store(out_ptr + offs, y, mask=mask)


@triton.jit
def asm(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs)
    y = tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True, pack=1)
    tl.store(out_ptr + offs, y)


@triton.jit
def buggy(x_ptr, out_ptr, BLOCK: tl.constexpr):
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.load(x_ptr + offs) + undefined_name)


x = torch.randn(16)
out = torch.empty(16)
gaps[(1,)](x, out, 16, 0.5, BLOCK=16)
expected = torch.tanh(x) + torch.rsqrt(x * x + 1) + 0.5 + 3.0
result = {"max_err": (out - expected).abs().max().item()}
for name, kernel in (("asm", asm), ("buggy", buggy)):
    try:
        kernel[(1,)](x, out, BLOCK=16)
        result[name] = "ran"
    except Exception as err:
        result[name] = unsupported_feature(err)
print(json.dumps(result))
'''


def test_bridge_makes_interpreter_match_gpu_semantics_and_names_limits():
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["max_err"] < 1e-5  # fp32 scalar argument, tl.range variable, libdevice tanh/rsqrt/isnan
    assert result["asm"] and "inline" in result["asm"]  # the interpreter cannot run PTX: named, not blamed
    assert result["buggy"] is None  # the kernel's own bug stays the kernel's


def test_interpreter_limit_stops_the_seed_without_asking_the_llm_to_fix_it(scripted_llm, context_for):
    server = scripted_llm(
        rule("s0", "seed", 0, "softmax_inline_asm.md"),
        rule("r0", "refine", 0, "softmax_correct.md"),
    )
    result = start_run(str(SOFTMAX_SPEC), context_for(server, rounds_per_seed=3))

    seed = result["seeds"][0]
    assert seed["last_verdict"]["failure_class"] == "interpreter_unsupported", seed["last_verdict"]
    assert "inline" in seed["last_verdict"]["reason"]
    assert seed["rounds"] == 1 and "GPU run" in seed["outcome"]
    assert server.count(task="refine") == 0  # an interpreter limit is not a bug to send back


def test_routing_stops_on_interpreter_limits_only():
    state = {"verdict": {"passed": False, "failure_class": "interpreter_unsupported"}, "round": 0, "rounds_budget": 3}
    assert route_after_verify(state) == "finish_seed"
    assert route_after_verify({**state, "verdict": {"passed": False, "failure_class": "runtime_error"}}) == "refine"
    outcome = finish_seed({**state, "seed": 0, "verdict": {**state["verdict"], "details": {"feature": "inline PTX"}}})
    assert "inline PTX" in outcome["seed_results"][0]["outcome"]
    prompt = render("refine.j2", problem={"name": "t", "description": "", "mode": "reference", "reference": "x"},
                    device="cpu", precision_note="", round=0, previous_code="x", verdict={**state["verdict"], "reason": "r", "evidence": ""},
                    earlier_failures=[])
    assert "not a bug in your kernel" in prompt
