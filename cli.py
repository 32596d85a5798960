"""KernelAgent's command line: parses options, builds the run context, and hands over to kernelagent.app."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import typer

from kernelagent import app as runs
from kernelagent import config as settings
from kernelagent import interrupts
from kernelagent.errors import (
    EXIT_INTERNAL,
    INTERRUPTED_EXIT_CODES,
    RESUMABLE_EXIT_CODES,
    ConfigError,
    KernelAgentError,
    NoKernelPassed,
    RunNotFound,
    UsageError,
    environment_fault,
)
from kernelagent.executors import get_executor
from kernelagent.graph.context import RunContext
from kernelagent.llm.client import endpoint, preflight
from kernelagent.progress import Progress, choose_mode
from kernelagent.runs.paths import resolved_in_run
from kernelagent.runs.store import RunStore
from kernelagent.sandbox.slots import restrict_gpus
from kernelagent.spec import load_problem

cli = typer.Typer(add_completion=False, no_args_is_help=True, help="Spec in, verified Triton kernel out.")

# --help: Rich lays it out for 80 columns when it sees no terminal (a pipe, CI, `| less`), which cut long option
# descriptions with "...". Without a terminal and without a width given (COLUMNS, TERMINAL_WIDTH), use 120.
HELP_WIDTH = 120


def _tidy_help() -> None:
    import typer.core
    import typer.rich_utils

    if not (os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH") or sys.stdout.isatty()):
        typer.rich_utils.MAX_WIDTH = HELP_WIDTH
    # A flag takes no value: no `<bool>` in its type column (typer >= 0.2x shows one for every option).
    option = getattr(typer.core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is not None and not getattr(shown, "_flags_hidden", False):
        def display_type_rich(self, ctx):  # noqa: ANN001, ANN202
            return None if getattr(self, "is_flag", False) else shown(self, ctx)

        display_type_rich._flags_hidden = True
        option.display_type_rich = display_type_rich


_tidy_help()



SpecArg = typer.Argument(..., help="Markdown spec or KernelBench problem .py file.")
SizeOpt = typer.Option([], "--size", help="NAME=INT: override a size constant of the reference (repeatable).")
QuietOpt = typer.Option(False, "--quiet", "-q", help="Print only the final line (errors still go to stderr).")
JsonLogsOpt = typer.Option(False, "--json-logs", help="One JSON object per event on stdout (for CI and scripts).")
SeedsOpt = typer.Option(None, "--seeds", help="Independent attempts in parallel (default 4).")
RoundsOpt = typer.Option(None, "--rounds", help="Verify/refine rounds per seed (default 8).")
# Checkpoint, budget and executor options, shared by run, resume and bench.
CheckpointUrlOpt = typer.Option(
    None, "--checkpoint-url", envvar="KERNELAGENT_CHECKPOINT_URL",
    help="postgresql://user@host:port/db for PostgreSQL checkpoints (default: SQLite in the runs folder).",
)
# run's own: without envvar, so that `config` can tell an environment value from an option.
RunCheckpointUrlOpt = typer.Option(
    None, "--checkpoint-url", help="postgresql://user@host:port/db (env KERNELAGENT_CHECKPOINT_URL; default: SQLite)."
)
MaxTokensOpt = typer.Option(None, "--max-tokens", help="Stop (exit 5, resumable) before passing this many tokens.")
MaxCostOpt = typer.Option(None, "--max-cost", help="Stop (exit 5, resumable) before passing this cost in USD.")
MaxWallOpt = typer.Option(None, "--max-wall", help="Stop (exit 5, resumable) after this many seconds (all sessions).")
PriceInOpt = typer.Option(None, "--price-in", help="USD per 1M input tokens (env KERNELAGENT_PRICE_IN).")
PriceOutOpt = typer.Option(None, "--price-out", help="USD per 1M output tokens (env KERNELAGENT_PRICE_OUT).")
ExecutorOpt = typer.Option(None, "--executor", help="Where verification runs: local (default) or ray.")
RayAddressOpt = typer.Option(None, "--ray-address", help="For --executor ray: auto, ray://host:10001 or local.")
GpusOpt = typer.Option(None, "--gpus", help="Use only the first N visible GPUs (default: every one).")
# bench's own options.
BenchFolderArg = typer.Argument(None, help="A folder of .md specs or KernelBench .py files (level1/, level2/...).")
BenchResumeOpt = typer.Option(None, "--resume", help="Continue the suite SUITE_ID (finished problems are kept).")
BenchFilterOpt = typer.Option(None, "--filter", help="Only problems whose path contains this.")
BenchLevelOpt = typer.Option(None, "--level", help="Only KernelBench level N (folder levelN/).")
BenchLimitOpt = typer.Option(None, "--limit", help="At most this many problems (in natural order).")
BenchParallelOpt = typer.Option(2, "--parallel", help="Problems run at once (each its own run).")
BenchSuiteIdOpt = typer.Option(None, "--suite-id", help="Name of a new suite (default: time + folder name).")
BenchRunsDirOpt = typer.Option("runs", "--runs-dir", help="Suites go to RUNS_DIR/suites/<suite_id>/.")
BenchModelOpt = typer.Option(None, "--model", help="Model name (env KERNELAGENT_MODEL).")
BenchBaseUrlOpt = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (env OPENAI_BASE_URL).")
BenchDeviceOpt = typer.Option(None, "--device", help="auto (default), cuda or cpu (Triton interpreter).")
BenchTimeoutOpt = typer.Option(None, "--timeout", help="Seconds allowed for one candidate's verification.")
BenchRequestTimeoutOpt = typer.Option(None, "--request-timeout", help="Seconds allowed for one LLM request.")
BenchDrawsOpt = typer.Option(None, "--draws", help="Independent random input draws per verification.")
BenchSizeOpt = typer.Option([], "--size", help="NAME=INT: override a size constant of every reference.")


def _scale_options(  # noqa: ANN001 - plain option values
    checkpoint_url, max_tokens, max_cost, max_wall, price_in, price_out, executor, ray_address, gpus=None
) -> dict:
    """Context fields of the checkpoint, budget and executor options that were given (None: not given)."""
    given = {
        "checkpoint_url": checkpoint_url, "max_tokens": max_tokens, "max_cost_usd": max_cost, "max_wall_s": max_wall,
        "price_in_per_m": price_in, "price_out_per_m": price_out, "executor": executor, "ray_address": ray_address,
        "gpu_count": gpus,
    }
    return {k: v for k, v in given.items() if v is not None}


def _parse_sizes(sizes: list[str]) -> dict[str, int]:
    parsed = {}
    for item in sizes:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().isdigit():
            raise UsageError(f"--size expects NAME=INT, got {item!r}")
        parsed[name.strip()] = int(value)
    return parsed


# Commands that read only run folders: a broken .env is a warning for them, not a reason to refuse.
COMMANDS_WITHOUT_SETTINGS = ("runs", "show", "graph")


@cli.callback()
def _load_dotenv(context: typer.Context) -> None:
    """Spec in, verified Triton kernel out."""
    # Before any command: the SDKs read the API key, proxies and LangSmith settings from the environment.
    try:
        settings.apply_dotenv()
    except ConfigError as err:
        if context.invoked_subcommand in COMMANDS_WITHOUT_SETTINGS:
            typer.secho(f"warning: {err} (ignored by `{context.invoked_subcommand}`)", fg="yellow", err=True)
            return
        typer.secho(f"error: {err}", fg="red", err=True)
        raise typer.Exit(err.exit_code) from None


def _finish(result: dict, progress: Progress) -> None:
    """The final line (the only one --quiet prints): verdict, kernel, report; exit 4 when nothing passed."""
    run_dir = Path(result["run_dir"])
    report = run_dir / "report.html"
    elapsed = f"{progress.elapsed():.0f}s"
    if result["status"] == "passed":
        winner = result["winner"]
        progress.finish(
            f"PASSED: seed {winner['seed']} after {winner['rounds']} round(s) in {elapsed}. "
            f"Kernel: {result['kernel_path']} | report: {report}",
            status="passed", exit_code=0, kernel_path=result["kernel_path"], report=str(report),
        )
        return
    progress.finish(
        f"FAILED: no candidate passed in {elapsed}. Report: {report} | details: {run_dir / 'result.json'}",
        status="failed", exit_code=NoKernelPassed.exit_code, report=str(report), result=str(run_dir / "result.json"),
    )
    raise typer.Exit(NoKernelPassed.exit_code)


def _guarded(
    action: Callable[[], None], progress: Progress | None = None, resume_hint: Callable[[], str | None] | None = None
) -> None:
    """Runs a command: every error becomes one line on stderr and its documented exit code; a run folder that
    exists stays as it is (resumable), and the line says how to resume it (`resume_hint`: for what is not a run)."""
    try:
        with interrupts.signals_as_interrupts():
            interrupts.run_interruptibly(action)
    except typer.Exit:
        raise
    except KernelAgentError as err:
        _fail(_first_line(err, progress), err.exit_code, progress)
    except KeyboardInterrupt as interrupt:
        hint = f"; continue with `{resume_hint()}`" if resume_hint and resume_hint() else ""
        _fail(interrupts.describe(interrupt) + hint, interrupts.exit_code_of(interrupt), progress, color="yellow")
    except Exception as err:  # a bug: still one line, the traceback kept for the report
        if (fault := environment_fault(err)) is not None:
            _fail(str(fault), fault.exit_code, progress)
        if os.environ.get("KERNELAGENT_DEBUG"):
            raise
        where = _save_traceback(progress)
        _fail(f"internal error: {type(err).__name__}: {_first_line(err, None)} (traceback: {where})",
              EXIT_INTERNAL, progress)


def _fail(message: str, code: int, progress: Progress | None, color: str = "red") -> None:
    if progress is not None:
        if code in RESUMABLE_EXIT_CODES and progress.run_id and f"resume {progress.run_id}" not in message:
            message += f"; the run is kept: {_resume_command(progress)}"
        progress.error(message, code)
    typer.secho(f"error: {message}" if color == "red" else message, fg=color, err=True)
    raise typer.Exit(code)


def _first_line(err: Exception, progress: Progress | None) -> str:
    """Messages with details (a reference's traceback) keep them in run.json; the terminal gets the first line."""
    lines = str(err).strip().splitlines() or [type(err).__name__]
    if len(lines) > 1 and progress is not None and progress.run_dir:
        return f"{lines[0]} (details: {Path(progress.run_dir) / 'run.json'})"
    return lines[0]


def _resume_command(progress: Progress) -> str:
    runs_dir = Path(progress.run_dir or "runs").parent
    extra = "" if runs_dir == Path("runs") else f" --runs-dir {runs_dir}"
    return f"python cli.py resume {progress.run_id}{extra}"


def _save_traceback(progress: Progress | None) -> str:
    """Next to the run when there is one (it goes with a bug report), else in the temp folder."""
    import tempfile

    if progress is not None and progress.run_dir and Path(progress.run_dir).is_dir():
        path = Path(progress.run_dir) / "traceback.txt"
    else:
        handle, name = tempfile.mkstemp(prefix="kernelagent-traceback-", suffix=".txt")
        os.close(handle)
        path = Path(name)
    path.write_text(traceback.format_exc())
    return str(path)


def _run_options(**options: object) -> dict[str, object]:
    """CLI options as RunContext fields; None: not given, so the environment, a config file or the default decides."""
    return {k: v for k, v in options.items() if v is not None}


@cli.command()
def run(
    spec: Path = SpecArg,
    model: str | None = typer.Option(None, help="Model name (env KERNELAGENT_MODEL)."),
    base_url: str | None = typer.Option(None, help="OpenAI-compatible endpoint (env OPENAI_BASE_URL)."),
    reasoning_effort: str | None = typer.Option(None, help="For reasoning models: low, medium, high."),
    seeds: int | None = SeedsOpt,
    rounds: int | None = RoundsOpt,
    collect_all: bool = typer.Option(False, "--collect-all", help="Keep refining every seed after one passes."),
    device: str | None = typer.Option(None, help="auto (default), cuda or cpu (Triton interpreter)."),
    timeout: float | None = typer.Option(None, help="Seconds allowed for one candidate's verification."),
    request_timeout: float | None = typer.Option(None, help="Seconds allowed for one LLM request."),
    draws: int | None = typer.Option(None, help="Independent random input draws per verification."),
    size: list[str] = SizeOpt,
    precision: str | None = typer.Option(None, help="spec (default), bf16 or fp16: ask for a lower precision."),
    rtol: float | None = typer.Option(None, help="Override the per-dtype relative tolerance."),
    atol: float | None = typer.Option(None, help="Override the per-dtype absolute tolerance."),
    allow_tf32: bool = typer.Option(False, "--allow-tf32", help="Accept TF32 matmuls for fp32 problems."),
    autotune: bool | None = typer.Option(None, "--autotune/--no-autotune", help="Sweep tile parameters (GPU)."),
    optimise_rounds: int | None = typer.Option(None, help="LLM optimisation rounds after verification (GPU, 3)."),
    target_roofline: float | None = typer.Option(None, help="Stop optimising at this roofline fraction (0.9)."),
    warm_workers: bool | None = typer.Option(
        None, "--warm-workers/--cold-workers", help="Verify in warm forked workers (default) or a cold process each."
    ),
    runs_dir: str | None = typer.Option(None, help="Where run folders go (default runs/)."),
    max_retries: int | None = typer.Option(None, help="LLM request retries, with backoff (default 3)."),
    checkpoint_url: str | None = RunCheckpointUrlOpt,
    max_tokens: int | None = MaxTokensOpt,
    max_cost: float | None = MaxCostOpt,
    max_wall: float | None = MaxWallOpt,
    price_in: float | None = PriceInOpt,
    price_out: float | None = PriceOutOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
    gpus: int | None = GpusOpt,
    quiet: bool = QuietOpt,
    json_logs: bool = JsonLogsOpt,
) -> None:
    """Generate, verify and select a Triton kernel for SPEC. Options not given come from the environment, ./.env,
    ./kernelagent.toml or defaults (see `config`)."""
    given = _run_options(
        model=model, base_url=base_url, reasoning_effort=reasoning_effort, num_seeds=seeds, rounds_per_seed=rounds,
        stop_on_first_pass=False if collect_all else None, device=device, verify_timeout_s=timeout,
        request_timeout_s=request_timeout, input_draws=draws, precision=precision, runs_dir=runs_dir, rtol=rtol,
        atol=atol, allow_tf32=allow_tf32 or None, autotune=autotune, optimise_rounds=optimise_rounds,
        target_roofline=target_roofline, max_retries=max_retries, warm_workers=warm_workers,
        **_scale_options(
            checkpoint_url, max_tokens, max_cost, max_wall, price_in, price_out, executor, ray_address, gpus
        ),
    )
    progress = Progress(choose_mode(quiet, json_logs))

    def go() -> None:
        load_problem(spec)  # a broken spec is reported as such, before the key, the endpoint or the settings
        ctx = settings.resolve(given | _run_options(sizes=_parse_sizes(size) or None)).context()
        preflight(ctx.llm_settings())  # no API key or provider package: say so before any work
        restrict_gpus(ctx.gpu_count)  # before anything takes a GPU slot or starts Ray
        if ctx.executor == "ray":
            get_executor(ctx)  # Ray places every GPU run from the first (the reference's) on
        progress.header(
            f"kernelagent: {spec} with {ctx.model} at {endpoint(ctx.llm_settings())}, "
            f"{ctx.num_seeds} seeds x {ctx.rounds_per_seed} rounds, device {ctx.device}",
            spec=str(spec), model=ctx.model, base_url=ctx.base_url, seeds=ctx.num_seeds,
            rounds=ctx.rounds_per_seed, device=ctx.device,
        )
        with progress:
            result = runs.start_run(str(spec), ctx, on_event=progress)
        _finish(result, progress)

    _guarded(go, progress)


@cli.command()
def resume(
    run_id: str = typer.Argument(..., help="The run to continue (see `runs`)."),
    runs_dir: str = typer.Option("runs", help="Where run folders are."),
    model: str | None = typer.Option(None, help="A new model (e.g. the run's endpoint serves another name now)."),
    base_url: str | None = typer.Option(None, help="A new OpenAI-compatible endpoint (the old one is gone)."),
    max_retries: int | None = typer.Option(None, help="New LLM request retries."),
    timeout: float | None = typer.Option(None, help="A new verification timeout."),
    request_timeout: float | None = typer.Option(None, help="A new LLM request timeout."),
    checkpoint_url: str | None = CheckpointUrlOpt,
    max_tokens: int | None = MaxTokensOpt,
    max_cost: float | None = MaxCostOpt,
    max_wall: float | None = MaxWallOpt,
    price_in: float | None = PriceInOpt,
    price_out: float | None = PriceOutOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
    gpus: int | None = GpusOpt,
    quiet: bool = QuietOpt,
    json_logs: bool = JsonLogsOpt,
) -> None:
    """Continue an interrupted run from its last checkpoint; finished work is not repeated. The run keeps the
    settings it started with (run.json), changed only by the options given here (recorded in run.json)."""
    overrides = _run_options(model=model, base_url=base_url, max_retries=max_retries, verify_timeout_s=timeout,
                             request_timeout_s=request_timeout)
    overrides |= _scale_options(
        checkpoint_url, max_tokens, max_cost, max_wall, price_in, price_out, executor, ray_address, gpus
    )
    progress = Progress(choose_mode(quiet, json_logs))

    def go() -> None:
        progress.header(f"kernelagent: resuming {run_id} from {runs_dir}/", run_id=run_id, runs_dir=runs_dir)
        restrict_gpus(gpus)
        with progress:
            result = runs.resume_run(run_id, runs_dir, overrides, on_event=progress)
        _finish(result, progress)

    _guarded(go, progress)


@cli.command("config")
def show_config(
    model: str | None = typer.Option(None, help="As `run --model`."),
    base_url: str | None = typer.Option(None, help="As `run --base-url`."),
    seeds: int | None = SeedsOpt,
    rounds: int | None = RoundsOpt,
    device: str | None = typer.Option(None, help="As `run --device`."),
    timeout: float | None = typer.Option(None, help="As `run --timeout`."),
    request_timeout: float | None = typer.Option(None, help="As `run --request-timeout`."),
    draws: int | None = typer.Option(None, help="As `run --draws`."),
    runs_dir: str | None = typer.Option(None, help="As `run --runs-dir`."),
) -> None:
    """Show every effective setting and where it comes from: cli, env, .env, kernelagent.toml, pyproject or
    default. API keys show as set / not set, never their value."""
    given = _run_options(
        model=model, base_url=base_url, num_seeds=seeds, rounds_per_seed=rounds, device=device,
        verify_timeout_s=timeout, request_timeout_s=request_timeout, input_draws=draws, runs_dir=runs_dir,
    )

    def go() -> None:
        resolved = settings.resolve(given)
        resolved.context()  # an invalid value is reported as `run` would report it
        rows = settings.describe(resolved)
        width = max(len(name) for name, _, _ in rows)
        for name, value, source in rows:
            typer.echo(f"{name:<{width}}  {value:<40} {source}".rstrip())

    _guarded(go)


@cli.command("runs")
def list_runs(runs_dir: str = typer.Option("runs", help="Where run folders are.")) -> None:
    """List runs with their status: running, passed, failed, interrupted (resumable), error (stopped for good)."""
    rows = runs.runs_table(runs_dir)
    if not rows:
        typer.echo(f"no runs under {runs_dir}/")
        return
    typer.echo(f"{'RUN':<52} {'STATUS':<12} PROBLEM")
    for row in rows:
        typer.echo(f"{row['run_id']:<52} {row.get('status', '?'):<12} {row.get('problem', '')}")


@cli.command()
def show(run_id: str, runs_dir: str = typer.Option("runs", help="Where run folders are.")) -> None:
    """Summarise one run."""
    _guarded(lambda: _show(run_id, runs_dir))


def _show(run_id: str, runs_dir: str) -> None:
    result_path = Path(runs_dir) / run_id / "result.json"
    meta = RunStore.at(runs_dir, run_id).meta()
    if not meta:
        raise RunNotFound(f"no run {run_id!r} under {runs_dir}/ (see `python cli.py runs`)")
    typer.echo(f"run {run_id}: {meta.get('status')} | problem {meta.get('problem')} | device {meta.get('device')}")
    if meta.get("error"):
        typer.echo(f"  stopped by: {meta['error']}")
    if result_path.exists():
        result = resolved_in_run(json.loads(result_path.read_text()), result_path.parent)
        for seed in result["seeds"]:
            typer.echo(f"  seed {seed['seed']}: {seed['outcome']} ({seed['rounds']} rounds)")
            for h in seed["history"]:
                verdict = "pass" if h["passed"] else f"{h['failure_class']}: {h['reason'][:90]}"
                typer.echo(f"    round {h['round']}: {verdict}")
        if result.get("kernel_path"):
            typer.echo(f"  kernel: {result['kernel_path']}")


@cli.command()
def bench(
    folder: Path | None = BenchFolderArg,
    resume_suite: str | None = BenchResumeOpt,
    filter_: str | None = BenchFilterOpt,
    level: int | None = BenchLevelOpt,
    limit: int | None = BenchLimitOpt,
    parallel: int = BenchParallelOpt,
    suite_id: str | None = BenchSuiteIdOpt,
    runs_dir: str = BenchRunsDirOpt,
    model: str | None = BenchModelOpt,
    base_url: str | None = BenchBaseUrlOpt,
    seeds: int | None = SeedsOpt,
    rounds: int | None = RoundsOpt,
    device: str | None = BenchDeviceOpt,
    timeout: float | None = BenchTimeoutOpt,
    request_timeout: float | None = BenchRequestTimeoutOpt,
    draws: int | None = BenchDrawsOpt,
    size: list[str] = BenchSizeOpt,
    checkpoint_url: str | None = CheckpointUrlOpt,
    max_tokens: int | None = MaxTokensOpt,
    max_cost: float | None = MaxCostOpt,
    max_wall: float | None = MaxWallOpt,
    price_in: float | None = PriceInOpt,
    price_out: float | None = PriceOutOpt,
    executor: str | None = ExecutorOpt,
    ray_address: str | None = RayAddressOpt,
    gpus: int | None = GpusOpt,
) -> None:
    """Run every problem of FOLDER (a suite), several at once; `--resume SUITE_ID` continues an interrupted one.
    Writes table.csv/.json/.md: verdicts, rounds, speedups, tokens, cost, wall time and KernelBench's fast_p."""
    options = {
        "model": model, "base_url": base_url, "num_seeds": seeds, "rounds_per_seed": rounds, "device": device,
        "verify_timeout_s": timeout, "request_timeout_s": request_timeout, "input_draws": draws,
        "sizes": _parse_sizes(size) or None,
        **_scale_options(
            checkpoint_url, max_tokens, max_cost, max_wall, price_in, price_out, executor, ray_address, gpus
        ),
    }
    given = {k: v for k, v in options.items() if v is not None}
    filters = {"filter": filter_, "level": level, "limit": limit}
    started: list[str] = []  # the suite id, once known: an interrupted suite's line says how to continue it
    _guarded(lambda: _bench(folder, resume_suite, suite_id, runs_dir, parallel, given, filters, started),
             resume_hint=lambda: f"python cli.py bench --resume {started[0]}" if started else None)


def _bench(folder, resume_suite, suite_id, runs_dir, parallel, given, filters, started) -> None:  # noqa: ANN001
    from kernelagent import suite as suites

    if resume_suite:
        suite = suites.Suite.open(runs_dir, resume_suite)
    elif folder is None:
        raise UsageError("bench needs a FOLDER of problems, or --resume SUITE_ID")
    else:
        problems = suites.discover(folder, substring=filters["filter"], level=filters["level"], limit=filters["limit"])
        suite = suites.Suite.create(
            runs_dir, suite_id or suites.new_suite_id(folder), folder, problems, settings.resolve(given).context(),
            filters,
        )
    started.append(suite.suite_id)
    count = len(suite.data()["problems"])
    typer.echo(f"suite {suite.suite_id}: {count} problems, {parallel} at a time, in {suite.root}")
    suites.run_suite(suite, parallel, overrides=given, on_event=_print_suite_event)
    typer.echo((suite.root / "table.md").read_text())
    typer.echo(f"tables: {suite.root / 'table.csv'} (and .json, .md)")
    verdicts = {row["verdict"] for row in suite.rows()}
    if "error" in verdicts:
        typer.secho("some problems ended with an error (see suite.json); `bench --resume` retries them", fg="yellow")
    if "stopped" in verdicts:
        typer.secho(f"budget reached; continue with `bench --resume {suite.suite_id}` and higher limits", fg="yellow")
        raise typer.Exit(5)


def _print_suite_event(event: str, data: dict) -> None:
    if event == "finished":
        note = f" ({data['error'][:120]})" if data.get("error") else ""
        took = f" in {data['wall_s']:.0f} s" if data.get("wall_s") is not None else ""
        typer.echo(f"  {data['key']}: {data['status']}{took}{note}")
    elif event == "skipped":
        typer.echo(f"  {data['key']}: {data['status']} (already finished)")


@cli.command()
def graph() -> None:
    """Print the pipeline graph as Mermaid."""
    typer.echo(runs.graph_mermaid())


@cli.command()
def demo(
    runs_dir: str = typer.Option("runs", help="Where the demo's run folder goes."),
    quiet: bool = QuietOpt,
    json_logs: bool = JsonLogsOpt,
) -> None:
    """OFFLINE DEMO against a bundled SCRIPTED endpoint (replies come from a script, not a model)."""
    from kernelagent.llm.scripted_server import ScriptedLLMServer, load_script

    demo_dir = Path(__file__).resolve().parent / "examples" / "demo"
    progress = Progress(choose_mode(quiet, json_logs))
    progress.header(
        "OFFLINE DEMO: the 'LLM' is a scripted endpoint on 127.0.0.1 replaying examples/demo/script.json.\n"
        "Its replies are fixed Triton modules (one wrong on purpose, to show refinement); no model is involved.\n"
        "Verification, sandboxing and selection are the real pipeline.",
        scripted=True,
    )
    with ScriptedLLMServer(load_script(demo_dir / "script.json")) as server:
        os.environ["KERNELAGENT_DEMO_KEY"] = "scripted"
        ctx = RunContext(model="scripted-model", base_url=server.base_url, api_key_env="KERNELAGENT_DEMO_KEY",
                         num_seeds=2, rounds_per_seed=3, device="cpu", runs_dir=runs_dir, max_retries=0,
                         request_timeout_s=30)

        def go() -> None:
            with progress:
                result = runs.start_run(str(demo_dir / "spec.md"), ctx, on_event=progress)
            _finish(result, progress)

        _guarded(go, progress)


def main() -> None:
    try:
        cli()
    except SystemExit as done:
        if done.code in INTERRUPTED_EXIT_CODES:
            # Seeds in progress hold non-daemon threads (an LLM request, a sandbox) that would keep the process alive
            # until they finish; their state is checkpointed and the run recorded as interrupted, so leave now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code)
        raise


if __name__ == "__main__":
    main()
