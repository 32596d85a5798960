"""The JSON files a run writes into its folder name its files relative to it, so a moved run folder reads them there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import SOFTMAX_SPEC, rule

import cli
from kernelagent.app import start_run
from kernelagent.nodes.benchmark import SKIPPED_ON_CPU, cached, measure_all
from kernelagent.report.collect import load_run
from kernelagent.runs.store import RunStore, write_json


def absolute_paths_into(run_dir: Path, files: list[Path]) -> list[str]:
    """The files among `files` whose text names `run_dir` by an absolute path (as given or resolved)."""
    roots = {str(run_dir), str(run_dir.resolve())}
    return [str(f.relative_to(run_dir)) for f in files if any(root in f.read_text() for root in roots)]


def run_files(run_dir: Path) -> list[Path]:
    """The run's JSON files that name its kernels: result.json, run.json and the timing records (those present)."""
    named = [run_dir / "result.json", run_dir / "run.json", *sorted((run_dir / "timing").glob("*.json"))]
    return [f for f in named if f.exists()]


def test_a_finished_runs_files_name_its_paths_relative_and_read_them_where_it_was_moved(
        scripted_llm, context_for, tmp_path, capsys):
    server = scripted_llm(rule("s0", "seed", 0, "softmax_off_by_one.md"), rule("r0", "refine", 0, "softmax_correct.md"))
    result = start_run(str(SOFTMAX_SPEC), context_for(server))
    run_dir = Path(result["run_dir"])
    assert result["kernel_path"] == str(run_dir / "kernel.py")  # in memory, paths stay absolute
    assert absolute_paths_into(run_dir, run_files(run_dir)) == []
    stored = json.loads((run_dir / "result.json").read_text())
    assert (stored["run_dir"], stored["kernel_path"]) == (".", "./kernel.py")
    assert stored["winner"]["candidate_path"] == "./seeds/seed0/round1.py"
    assert json.loads((run_dir / "run.json").read_text())["winner"]["candidate_path"] == "./seeds/seed0/round1.py"

    moved = tmp_path / "elsewhere"
    subprocess.run(["mv", str(run_dir.parent), str(moved)], check=True)
    new_dir = moved / run_dir.name
    cli._show(run_dir.name, str(moved))
    assert f"kernel: {new_dir / 'kernel.py'}" in capsys.readouterr().out
    (new_dir / "kernel.py").unlink()  # the report falls back to the winning candidate, read where it is now
    report = load_run(new_dir)
    assert report.winner["candidate_path"] == str(new_dir / "seeds/seed0/round1.py")
    assert report.kernel_code == (new_dir / "seeds/seed0/round1.py").read_text()


def test_timing_files_name_the_kernel_relative_and_older_absolute_ones_load_where_the_run_is_now(tmp_path):
    store = RunStore(tmp_path / "runs" / "r1")
    kernel = store.write_text("seeds/seed0/round0.py", "pass\n")
    cpu = {"device": "cpu"}  # the timing child declines on CPU: what measure_all writes is positioned()'s record
    (timed,) = measure_all(store, [("seed0/round0", str(kernel))], cpu, {}, {})
    assert timed == {"error": SKIPPED_ON_CPU, "label": "seed0/round0", "path": str(kernel)}
    tuned = cached(store, "timing/autotune.json",  # as the autotune node caches an improved sweep
                   lambda: {"improved": True, "path": str(store.write_text("tuned/autotuned.py", "pass\n"))})
    assert tuned["path"] == str(store.path("tuned/autotuned.py"))
    assert absolute_paths_into(store.root, run_files(store.root)) == []
    assert json.loads(store.path("timing/seed0_round0.json").read_text())["path"] == "./seeds/seed0/round0.py"

    moved = tmp_path / "moved"
    subprocess.run(["mv", str(tmp_path / "runs"), str(moved)], check=True)
    here = RunStore(moved / "r1")
    # Written by a version that stored absolute paths, at the old place.
    write_json(here.path("timing", "seed1_round0.json"), {"ms": 1.0, "label": "seed1/round0",
                                                           "path": str(tmp_path / "runs/r1/seeds/seed1/round0.py")})
    read = measure_all(here, [("seed0/round0", "unused"), ("seed1/round0", "unused")], cpu, {}, {})
    assert [r["path"] for r in read] == [str(here.path("seeds/seed0/round0.py")), str(here.path("seeds/seed1/round0.py"))]
    assert cached(here, "timing/autotune.json", dict)["path"] == str(here.path("tuned/autotuned.py"))
