"""Node benchmark: time every verified candidate and the reference (eager and torch.compile) on the GPU.

The seeds are timed together, interleaved over several rounds, each with a median and a confidence interval; the
incumbent (the kernel later stages must beat) is the earliest seed that the lowest median does not clear.
On CPU the node records that timing was skipped: interpreter times are not speed and are never reported as such.
"""

from __future__ import annotations

from pathlib import Path

from langgraph.runtime import Runtime

from kernelagent.bench.roofline import ceilings, roofline
from kernelagent.bench.stats import clears, pick, time_together
from kernelagent.bench.timing import speedups, time_reference
from kernelagent.graph.state import RunState
from kernelagent.nodes.common import run_context, store_of
from kernelagent.runs.paths import read_in_run, write_in_run

SKIPPED_ON_CPU = "timing needs a CUDA GPU; interpreter times are not speed"


def benchmark(state: RunState, runtime: Runtime) -> dict:
    passing = [r for r in state.get("seed_results", []) if r["passed"]]
    if state["device"] != "cuda" or state["problem"]["mode"] != "reference":
        reason = SKIPPED_ON_CPU if state["device"] != "cuda" else "timing needs a PyTorch reference to compare with"
        return {"timing": {"skipped": reason}}
    if not passing:
        return {"timing": {"skipped": "no verified candidate to time"}}
    store = store_of(state)
    harness = state["harness"]
    options = checks(run_context(runtime))
    reference = cached(
        store, "timing/reference.json",
        lambda: time_reference(harness, store.path("timing", "reference"), tf32=options["tf32"]),
    )
    if "eager_ms" not in reference:
        return {"timing": {"skipped": f"the reference could not be timed: {reference.get('error', 'unknown error')}"}}
    limits = cached(store, "timing/ceilings.json", ceilings)
    seeds = [
        (f"seed{r['seed']}/round{r['rounds'] - 1}", r["candidate_path"]) for r in sorted(passing, key=lambda r: r["seed"])
    ]
    # One seed to time: its cross-checks (CUDA-graph and back-to-back figures) now, so select need not re-time it.
    candidates = measure_all(store, seeds, harness, reference, limits, crosscheck=len(seeds) == 1, **options)
    chosen = pick(candidates)
    timing = {"reference": reference, "ceilings": limits, "candidates": candidates}
    return {"timing": timing | ({"incumbent": candidates[chosen]["label"]} if chosen is not None else {})}


def checks(ctx) -> dict:  # noqa: ANN001 - a RunContext
    """What every timed call is checked with, as in verification: the run's TF32 setting and tolerances."""
    return {"tf32": ctx.allow_tf32, "rtol": ctx.rtol, "atol": ctx.atol}


def measure_all(store, items: list[tuple[str, str]], harness: dict, reference: dict, limits: dict,  # noqa: ANN001
                **options: object) -> list[dict]:
    """Median time, interval, speedups and roofline position of several (label, path) pairs, timed together in one child, interleaved over several rounds:
    one CUDA context and one set of imports for all of them, and times that compare within a process (separate
    processes have differed by 14%). Each result carries its "interval" (bench/stats.py). Stored per label, so a
    resumed run reads them and never re-times. options: time_candidates' (tf32, rtol, atol, crosscheck)."""
    paths = {label: store.path("timing", f"{_slug(label)}.json") for label, _ in items}
    results = {label: read_in_run(store.root, paths[label]) for label, _ in items}
    todo = [(label, path) for label, path in items if results[label] is None]
    if todo:
        folder = store.path("timing", "batch_" + "_".join(_slug(label) for label, _ in todo)[:80])
        timed = time_together([Path(path).read_text() for _, path in todo], harness, folder,
                              labels=[label for label, _ in todo], ceilings=limits, **options)
        for (label, path), one in zip(todo, timed, strict=True):
            results[label] = positioned(one, label, path, reference, limits)
            write_in_run(store.root, paths[label], results[label])
    return [slim(results[label]) for label, _ in items]


def slim(result: dict) -> dict:
    """A timing result as the state keeps it: every per-call time stays in its file in the run folder, the
    per-round medians and the interval stay in the checkpoint."""
    return {k: v for k, v in result.items() if k != "samples_ms"}


def _slug(label: str) -> str:
    return label.replace("/", "_")


def positioned(timed: dict, label: str, code_path: str, reference: dict, limits: dict) -> dict:
    """A timing result with its speedups and roofline position, under our label and path."""
    if "ms" not in timed:
        return {"error": timed.get("error") or timed.get("skipped"), "label": label, "path": code_path}
    traffic = (reference.get("bytes"), reference.get("flops"))
    # The judge's count of bytes and FLOPs can be missing (a reference it could not count): no position then.
    position = (
        roofline(timed["ms"], traffic[0], traffic[1], limits, reference.get("dtype", "float32"))
        if None not in traffic and "copy_gbps" in limits
        else None
    )
    # Our label and path win over the timing child's own names for the file it timed.
    return {**timed, **speedups(timed["ms"], reference), "roofline": position, "label": label, "path": code_path}


def cached(store, name: str, compute) -> dict:  # noqa: ANN001
    """The run file `name` (paths in it resolved where the run folder is now), else `compute()`, stored there."""
    path = store.path(name)
    value = read_in_run(store.root, path)
    if value is None:
        value = compute()
        write_in_run(store.root, path, value)
    return value


def fastest(candidates: list[dict]) -> dict | None:
    """The lowest median: for routing's roofline check only. Decisions use incumbent() and stats.clears."""
    timed = [c for c in candidates if "ms" in c]
    return min(timed, key=lambda c: c["ms"]) if timed else None


def incumbent(timing: dict) -> dict | None:
    """The kernel a new version must beat: the last one kept because its interval cleared its predecessor's."""
    named = [c for c in timing.get("candidates", []) if c.get("label") == timing.get("incumbent") and "ms" in c]
    return named[-1] if named else fastest(timing.get("candidates", []))


def challenge(store, label: str, code_path: str, holder: dict, harness: dict, reference: dict, limits: dict,  # noqa: ANN001
              margin: float, **options: object) -> tuple[dict, dict, dict]:
    """`code_path` timed together with the incumbent `holder` in one interleaved call: (the new kernel's result,
    the incumbent's result from the same call, stats.clears' decision). Stored, so a resumed run does not re-time."""
    slug = _slug(label)
    items = [(f"{holder['label']} (vs {label})", holder["path"]), (label, code_path)]
    old, new = measure_all(store, items, harness, reference, limits, **options)
    if "ms" not in old or "ms" not in new:
        return new, old, {"clears": False, "how": "none", "why": f"not timed: {new.get('error') or old.get('error')}"}
    decision = cached(store, f"timing/{slug}.decision.json", lambda: clears(new, old, margin=margin))
    return new, old, decision
