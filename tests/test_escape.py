"""The escape corpus (tests/escape/): attacks run through the real verifier with the static policy bypassed and the
runtime guard left behind (each attack runs in a fresh interpreter the guard lets start); each attack's effect is
checked from outside (files, processes, signals) to be absent after its run."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from kernelagent.sandbox.reaper import landlock_abi

_spec = importlib.util.spec_from_file_location("escape_run", Path(__file__).resolve().parent / "escape" / "run.py")
escape = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(escape)

ATTACKS = sorted(path.stem for path in escape.ATTACKS.glob("*.py"))


@pytest.fixture(scope="module")
def escapes(tmp_path_factory):
    rows, setting = escape.run_escapes("cpu", tmp_path_factory.mktemp("escape"), timeout_s=60)
    return {row["attack"]: row for row in rows}, setting


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_contained(escapes, attack):
    if landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock: candidate runs are not confined (verdicts say filesystem_confined=false)")
    if attack in escape.NEEDS_OWN_UID and os.geteuid() != 0:
        pytest.skip("only a uid of the run's own (the agent running as root) lets the kernel count the run's tasks")
    if attack in escape.NEEDS_SCOPES_OR_UID and os.geteuid() != 0 and landlock_abi() < 6:
        pytest.skip("signals stay inside the run only with Landlock ABI 6 scopes (Linux 6.12) or a uid of its own")
    row = escapes[0][attack]
    assert row["contained"], (row["how"], row["found"], row["verdict"]["reason"])


def test_verdicts_record_the_confinement_applied(escapes):
    rows, _ = escapes
    confinement = rows["secret_env"]["verdict"]["details"]["confinement"]
    assert confinement["landlock_abi"] == landlock_abi()
    assert confinement["uid_note"]
    if landlock_abi() >= 6:
        assert confinement["scopes"] == ["abstract_unix_socket", "signal"]
    if os.geteuid() == 0:
        assert confinement["uid"] != 0 and confinement["capabilities"] == "0000000000000000"
        assert confinement["max_tasks"] >= 256
    else:
        assert confinement["uid"] == os.geteuid() and "not root" in confinement["uid_note"]


def test_candidate_folders_keep_only_the_code_and_the_log(escapes):
    work = Path(escapes[1]["shared_cache"]).parent / "candidates"
    for folder in work.iterdir():
        assert sorted(p.name for p in folder.iterdir()) == ["candidate.py", "sandbox.log"], folder
        assert all(p.stat().st_uid == os.geteuid() for p in folder.iterdir()), "handed back to the agent's uid"
