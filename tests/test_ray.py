"""The Ray executor against a real local Ray instance (CPU): verification runs in Ray workers, files travel as bytes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import ray
from conftest import ROOT

from kernelagent.executors import get_executor
from kernelagent.executors.ray_executor import RayTaskFailed
from kernelagent.graph.context import RunContext
from kernelagent.llm.extract import extract_code
from kernelagent.llm.scripted_server import ScriptedLLMServer, load_script
from kernelagent.verify.verifier import prepare_reference

SUITE = ROOT / "examples" / "suite"
RELU_SPEC = SUITE / "level1" / "1_relu.py"


@pytest.fixture(scope="module")
def local_ray():
    # Workers are fresh interpreters: they must import this checkout's kernelagent, whatever is installed.
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved]))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no report to Ray's usage server
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


def relu_harness(folder: Path) -> dict:
    return prepare_reference(
        reference_source=RELU_SPEC.read_text(), harness_dir=folder, device="cpu", draws=1, sizes={},
        precision="spec", seed=0, timeout_s=120, cache_dir=folder / "triton-cache",
    )


def reply_code(name: str) -> str:
    return extract_code((SUITE / "replies" / name).read_text(), "ModelNew")


def test_verifications_run_in_ray_workers_and_their_files_come_back(local_ray, tmp_path):
    harness = relu_harness(tmp_path / "harness")
    executor = get_executor(RunContext(executor="ray"))
    honest, wrong = reply_code("relu.md"), reply_code("relu.md").replace("tl.maximum(x, 0.0)", "tl.minimum(x, 0.0)")
    # Submitted together: two Ray tasks, one CPU each.
    futures = [executor.submit_verify(code, harness, tmp_path / name, timeout_s=120)
               for name, code in (("honest", honest), ("wrong", wrong))]
    passed, failed = (future.result(timeout=240) for future in futures)

    assert passed["passed"], passed
    assert not failed["passed"] and failed["failure_class"] == "numerical_mismatch"
    where = passed["details"]["executor"]
    assert where["kind"] == "ray" and where["pid"] != os.getpid() and where["node_id"]
    # The work folder is filled as a local verification would have left it.
    assert (tmp_path / "honest" / "candidate.py").read_text() == honest
    assert "exit=0" in (tmp_path / "honest" / "sandbox.log").read_text()
    assert executor.submit(os.getpid).result(timeout=60) != os.getpid()


def test_a_task_that_fails_on_ray_is_a_clear_resumable_error(local_ray, tmp_path):
    test_file = tmp_path / "frozen_test.py"
    test_file.write_text("def test():\n    pass\n")
    harness = {"mode": "test", "test_path": str(test_file), "sha256": "not-its-hash", "device": "cpu",
               "cache_dir": str(tmp_path / "cache")}
    code = extract_code((ROOT / "tests" / "replies" / "scaled_add_kernel.md").read_text(), "kernel_function")
    future = get_executor(RunContext(executor="ray")).submit_verify_test(code, harness, tmp_path / "w", timeout_s=60)
    with pytest.raises(RayTaskFailed, match="changed since it was validated"):
        future.result(timeout=120)


def test_pipeline_run_with_the_ray_executor(local_ray, tmp_path, monkeypatch):
    from kernelagent.app import start_run

    monkeypatch.setenv("KERNELAGENT_TEST_KEY", "test-key")
    with ScriptedLLMServer(load_script(SUITE / "script.json")) as server:
        ctx = RunContext(model="scripted-model", base_url=server.base_url, api_key_env="KERNELAGENT_TEST_KEY",
                         num_seeds=1, rounds_per_seed=2, device="cpu", runs_dir=str(tmp_path / "runs"),
                         max_retries=0, request_timeout_s=20, verify_timeout_s=120, input_draws=1, executor="ray")
        result = start_run(str(RELU_SPEC), ctx)

    assert result["status"] == "passed", json.dumps(result, indent=1)[:2000]
    verdict = json.loads((Path(result["run_dir"]) / "seeds/seed0/round0.verdict.json").read_text())
    where = verdict["details"]["executor"]
    assert where["kind"] == "ray" and where["pid"] != os.getpid(), where
    # The graph and its checkpoints stayed here.
    assert (tmp_path / "runs" / "checkpoints.sqlite").exists()
    assert sys.modules.get("ray") is local_ray
