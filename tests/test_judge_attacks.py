"""Attacks on the judge that need more than a verdict to check: what happened outside the candidate's folder, and
what a candidate can predict. The corpus attacks (tests/corpus/judge_attacks, written by an outside attacker who had
only the contract) run through tests/test_corpus.py with the static policy bypassed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelagent.verify import verifier

CORPUS = Path(__file__).parent / "corpus"
ATTACKS = json.loads((CORPUS / "judge_attacks" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def harnesses(tmp_path_factory):
    work = tmp_path_factory.mktemp("judge-attacks")
    made = {}
    for problem in sorted({a["problem"] for a in ATTACKS}):
        made[problem] = verifier.prepare_reference(
            reference_source=(CORPUS / problem).read_text(),
            harness_dir=work / Path(problem).stem,
            device="cpu",
            draws=3,
            sizes={},
            precision="spec",
            timeout_s=120,
            cache_dir=work / "cache",
        )
    yield made
    for harness in made.values():
        verifier.release(harness)


def judged_without_policy(code: str, harness: dict, workdir: Path, timeout_s: float = 60) -> dict:
    return verifier.judge_without_policy(code, harness, workdir, timeout_s=timeout_s)


def test_a_planted_symlink_does_not_redirect_our_writes(harnesses, tmp_path):
    """The candidate replaces sandbox.log with a link to a file outside its folder; the verifier writes its log
    after the candidate is dead and must not follow the link."""
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    code = (CORPUS / "honest" / "relu__basic.py").read_text().replace(
        "class ModelNew",
        f"import os\nos.symlink({str(victim)!r}, 'sandbox.log')\n\n\nclass ModelNew",
        1,
    )
    verdict = judged_without_policy(code, harnesses["problems/relu.py"], tmp_path / "candidate")
    assert victim.read_text() == "untouched"
    log = tmp_path / "candidate" / "sandbox.log"
    assert not log.is_symlink() and log.read_text().startswith("exit=")
    assert verdict["passed"], verdict  # the link itself is harmless once it is not followed


PRECOMPUTED = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def copy_kernel(src, dst, n, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(dst + offsets, tl.load(src + offsets, mask=offsets < n), mask=offsets < n)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        # Predict the draw: the global RNG as __init__ finds it, and the usual seeds, replayed through get_inputs().
        guesses = [torch.randn(16, 256)] + [torch.randn(16, 256, generator=torch.Generator().manual_seed(s))
                                            for s in (0, 1, 42, 1234)]
        self.memo = [torch.relu(g) for g in guesses]

    def forward(self, x):
        out = torch.empty_like(x)
        copy_kernel[(triton.cdiv(x.numel(), 1024),)](self.memo[0], out, x.numel(), BLOCK=1024)
        return out
"""


def test_inputs_cannot_be_predicted_while_the_model_is_built(harnesses, tmp_path):
    """Draws are seeded by the judge from fresh randomness after the candidate's model exists: a memorised answer
    for any predictable draw (the RNG state __init__ sees, common seeds) is wrong."""
    verdict = judged_without_policy(PRECOMPUTED, harnesses["problems/relu.py"], tmp_path / "candidate")
    assert verdict["failure_class"] == "numerical_mismatch", verdict
    assert verdict["reason"].startswith("draw 0"), verdict


def test_a_judge_that_ends_twice_during_a_candidate_fails_it_and_retires_no_gpu(harnesses, tmp_path):
    """On the GPU a candidate keeps the judge's uid and its signals reach the judge: an attack in the H200 escape
    corpus ended the judge on every attempt, and the JudgeError ended the whole verification (the agent's own run).
    Here the judge is killed from outside whenever the candidate has started: the verdict fails the candidate."""
    import threading
    import time

    from kernelagent.verify.judge_client import _judges, judge_key

    harness = harnesses["problems/relu.py"]
    workdir = tmp_path / "candidate"
    code = (CORPUS / "honest" / "relu__basic.py").read_text().replace(
        "class ModelNew", "import time\nopen('started', 'w').close()\ntime.sleep(4)\n\n\nclass ModelNew", 1)
    kills = []

    def kill_judge_once_the_candidate_started() -> None:
        deadline = time.monotonic() + 60
        while len(kills) < 2 and time.monotonic() < deadline:
            if (workdir / "started").exists():
                (workdir / "started").unlink()
                judge = _judges[(judge_key(harness["judge"]), None)]
                judge.process.kill()
                kills.append(judge.process.pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_judge_once_the_candidate_started)
    killer.start()
    verdict = judged_without_policy(code, harness, workdir)
    killer.join()
    assert len(kills) == 2 and kills[0] != kills[1], kills  # a fresh judge the second time
    assert not verdict["passed"] and verdict["failure_class"] == "tamper", verdict
    assert "ended twice" in verdict["reason"]
