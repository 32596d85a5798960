"""Medians with confidence intervals, and the one test that decides whether a kernel is faster than another.

Method (docs/statistics.md says why): a distribution-free order-statistic interval for the median, taken over
per-round medians (rounds of an interleaved timing call), or over block medians of the per-call series when a
result has a single round. No resampling, so the same numbers always give the same interval.
"""

from __future__ import annotations

import ast
import inspect
import io
import math
import statistics
import tokenize
from pathlib import Path

LEVEL = 0.95  # the coverage we aim for; an interval states the exact coverage it achieved
MIN_POINTS = 5  # fewer rounds (or blocks) than this give no interval: [min, max] of 4 covers only 87.5%
BLOCKS = 10  # a single round's per-call series is cut into this many consecutive blocks (batch medians)
ROUNDS = 7  # rounds of an interleaved call used for decisions: [min, max] of 7 per-round figures covers 98.4%
NO_INTERVAL = "no interval: the timing gave no per-round or per-call samples"


# ----------------------------------------------------------------------------------------------------------------
# Intervals


def median_interval(values: list[float], level: float = LEVEL) -> dict | None:
    """{"low", "high", "level", "n"}: the order-statistic interval [x_(k), x_(n+1-k)] for the median of the
    distribution the values come from, with the largest k whose exact binomial coverage is at least `level`
    (or k = 1, [min, max], with its lower exact coverage stated, when n is too small to reach it). None below
    MIN_POINTS values. Valid for any continuous distribution, given independent values."""
    xs = sorted(values)
    n = len(xs)
    if n < MIN_POINTS:
        return None
    k = 1
    while k + 1 <= n // 2 and _coverage(n, k + 1) >= level:
        k += 1
    return {"low": xs[k - 1], "high": xs[n - k], "level": round(_coverage(n, k), 4), "n": n}


def _coverage(n: int, k: int) -> float:
    """P(x_(k) <= median <= x_(n+1-k)) = 1 - 2 P(Binomial(n, 1/2) <= k - 1)."""
    tail = sum(math.comb(n, i) for i in range(k)) / 2**n
    return 1.0 - 2.0 * tail


def points_of(result: dict) -> tuple[list[float], str] | None:
    """The independent-enough figures an interval is built on, and how they were obtained; None if there are none.

    Per-round medians when the call had several rounds (each round re-times every candidate in a shuffled order,
    so slow drift and neighbours' effects spread evenly). With one round, block medians of the per-call series:
    consecutive calls are correlated, and medians of consecutive blocks are much less so (the batch-means method).
    """
    rounds = result.get("rounds_ms") or []
    if len(rounds) >= MIN_POINTS:
        return [float(x) for x in rounds], f"median of {len(rounds)} per-round medians"
    samples = result.get("samples_ms") or []
    if len(samples) >= MIN_POINTS * 4:
        size = len(samples) // BLOCKS if len(samples) >= BLOCKS * 4 else 4
        blocks = [samples[i : i + size] for i in range(0, len(samples) - size + 1, size)]
        return [statistics.median(b) for b in blocks], f"median of {len(blocks)} block medians of {len(samples)} calls"
    return None


def estimate(result: dict, level: float = LEVEL) -> dict:
    """The median and its interval for one timing result: {"median_ms", "low_ms", "high_ms", "level", "method",
    "n"}, or {"median_ms", "interval": None, "why": "no interval: ..."} when the result has no samples to use."""
    median = result.get("ms")
    found = points_of(result)
    interval = median_interval(found[0], level) if found else None
    if interval is None:
        return {"median_ms": median, "interval": None, "why": NO_INTERVAL if found is None else
                f"no interval: fewer than {MIN_POINTS} rounds or blocks"}
    return {"median_ms": median, "low_ms": interval["low"], "high_ms": interval["high"], "level": interval["level"],
            "method": found[1], "n": interval["n"]}


def with_interval(result: dict) -> dict:
    """The timing result with its "interval" (estimate() above) attached; results without "ms" are unchanged."""
    return {**result, "interval": estimate(result)} if "ms" in result else result


# ----------------------------------------------------------------------------------------------------------------
# The comparison


def clears(candidate: dict, incumbent: dict, *, margin: float = 0.0, level: float = LEVEL) -> dict:
    """Is `candidate` faster than `incumbent` beyond doubt? {"clears": bool, "how": ..., "why": one line}.

    Paired when both come from one interleaved call (the same "batch", equal-length "rounds_ms"): the interval of the median of the
    per-round ratios candidate/incumbent must lie entirely below 1 - margin. Round i timed both kernels close
    together, so drift common to both cancels in the ratio. Otherwise the candidate's whole interval must lie below
    the incumbent's low end times (1 - margin). Without intervals nothing clears: a lower median alone is noise.
    """
    a, b = candidate.get("rounds_ms") or [], incumbent.get("rounds_ms") or []
    one_call = candidate.get("batch") == incumbent.get("batch")  # time_together marks each call's results
    if one_call and len(a) == len(b) and len(a) >= MIN_POINTS and all(x > 0 for x in b):
        ratio = median_interval([x / y for x, y in zip(a, b, strict=True)], level)
        bar = 1.0 - margin
        ok = ratio["high"] < bar
        return {"clears": ok, "how": "paired", "ratio_low": ratio["low"], "ratio_high": ratio["high"],
                "level": ratio["level"],
                "why": f"time ratio in [{ratio['low']:.3f}, {ratio['high']:.3f}] ({ratio['level']:.1%}, "
                       f"{len(a)} rounds): " + ("entirely below" if ok else "not entirely below") + f" {bar:.3f}"}
    ours, theirs = estimate(candidate, level), estimate(incumbent, level)
    if ours.get("interval", True) is None or theirs.get("interval", True) is None:
        return _band_clears(candidate, incumbent, margin, ours.get("why") or theirs.get("why"))
    bar = theirs["low_ms"] * (1.0 - margin)
    ok = ours["high_ms"] < bar
    return {"clears": ok, "how": "intervals",
            "why": f"[{ours['low_ms']:.4g}, {ours['high_ms']:.4g}] ms vs [{theirs['low_ms']:.4g}, "
                   f"{theirs['high_ms']:.4g}] ms: " + ("clears" if ok else "overlaps or lies above") + " the bar"}


def _band_clears(candidate: dict, incumbent: dict, margin: float, why: str) -> dict:
    """Without samples, the per-call p20-p80 band stands in: a crude spread, not an interval, and said to be so.
    It is wider than the noise between medians of one process, so it errs towards keeping the incumbent."""
    high, low = candidate.get("p80_ms"), incumbent.get("p20_ms")
    if high is None or low is None:
        return {"clears": False, "how": "none", "why": why}
    ok = high < low * (1.0 - margin)
    return {"clears": ok, "how": "p20-p80 band",
            "why": f"{why}; p80 {high:.4g} ms vs p20 {low:.4g} ms: " + ("clears" if ok else "overlaps")}


def pick(results: list[dict], *, level: float = LEVEL) -> int | None:
    """Index of the kernel to keep among results listed earliest (or simplest) first.

    The lowest median is not rewarded as such: the earliest result that the lowest-median one does not clear wins
    (ties within the noise go to the earlier kernel). None if nothing has a time.
    """
    timed = [i for i, r in enumerate(results) if "ms" in r]
    if not timed:
        return None
    lowest = min(timed, key=lambda i: results[i]["ms"])
    return next(i for i in timed if i == lowest or not clears(results[lowest], results[i], level=level)["clears"])


# ----------------------------------------------------------------------------------------------------------------
# Identity of code, and the one interleaved timing call


def normalised(code: str) -> str:
    """The code with comments, docstrings, blank lines and formatting removed: an AST dump (a token stream of
    what remains when the code does not parse). Two versions with equal forms are the same kernel."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return " ".join(_tokens(code))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False)


def _tokens(code: str) -> list[str]:
    """The significant tokens of code that does not parse, up to where the tokenizer gives up, then the rest raw."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines = code.splitlines(keepends=True)
    out: list[str] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type not in skip:
                out.append(token.string)
    except (tokenize.TokenError, IndentationError, SyntaxError) as err:
        row = err.args[1][0] if isinstance(err, tokenize.TokenError) and len(err.args) > 1 else len(lines)
        out += "".join(lines[row:]).split()
    return out


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def same_as_any(code: str, earlier: list[str]) -> int | None:
    """Index of the first earlier version with the same normalised form as `code`, or None."""
    form = normalised(code)
    return next((i for i, other in enumerate(earlier) if normalised(other) == form), None)


def time_together(codes: list[str], harness: dict, workdir: Path, *, labels: list[str], rounds: int = ROUNDS,
                  **options: object) -> list[dict]:
    """time_candidates with the kernels interleaved over `rounds` rounds in one process, each result with its
    interval. Where the timing child cannot do rounds yet, one round is timed and the intervals say so."""
    from kernelagent.bench.timing import time_candidates

    if "rounds" in inspect.signature(time_candidates).parameters:
        options["rounds"] = rounds
    results = time_candidates(codes, harness, workdir, labels=labels, **options)
    return [{**with_interval(r), "batch": str(workdir)} for r in results]
