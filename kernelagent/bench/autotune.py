"""Autotuning by rewriting launch literals: find the tile and launch parameters a kernel exposes, sweep them,
time the variants on the GPU, verify the fastest few, and keep the fastest verified one only when, timed together
with the seed, its confidence interval clears the seed's."""

from __future__ import annotations

import ast
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kernelagent.bench.stats import ROUNDS, clears, normalised, time_together

LAUNCH_OPTIONS = ("num_warps", "num_stages")
DEFAULT_LAUNCH = {"num_warps": 4, "num_stages": 3}  # Triton's defaults on CUDA when a launch names neither
SWEEP_LAUNCH = {"num_warps": (2, 4, 8), "num_stages": (2, 3, 4)}
BLOCK_CAP = 8192  # largest 1-D tile proposed above the current value
# Joint tile scalings tried first: bigger tiles are where small-tiled seeds lose most.
JOINT_FACTORS = (1, 2, 4, 8, 0.5, 0.25)
# A dot tile whose accumulator needs more than this many fp32 registers per thread spills and is never fast.
MAX_ACC_PER_THREAD = 128
MAX_TILE_PER_THREAD = 512
SLOW_FACTOR = 4.0  # a variant this many times slower than the seed is not timed to the end


@dataclass
class Param:
    """One tunable value: the literal(s) that hold it, or the launch calls that lack it and get it inserted."""

    key: str
    kind: str  # "block", "num_warps" or "num_stages"
    current: int
    values: list[int]
    literals: list[tuple[int, int]] = field(default_factory=list)  # byte spans of int literals in the source
    inserts: list[tuple[int, str]] = field(default_factory=list)  # (byte offset of a launch's ")", keyword)
    launches: set[int] = field(default_factory=set)  # ids of the launches it feeds
    dot: bool = False  # feeds a kernel that calls tl.dot


# ----------------------------------------------------------------------------------------------------------------
# Public API


def tunable_parameters(code: str) -> dict[str, list]:
    """{key: values to sweep (current value included)} for the constexpr/launch parameters the code exposes."""
    return {p.key: list(p.values) for p in _plan(code)}


def variants(code: str, max_variants: int = 24) -> list[tuple[str, str]]:
    """(label, rewritten code) for up to max_variants parameter choices; only the literals change."""
    params = _plan(code)
    return [(label(a), render(code, params, a)) for a in first_round(params, max_variants)]


def label(assignment: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in assignment.items()) or "seed"


def apply_label(code: str, config: str) -> str:
    """Re-applies a recorded sweep label ("BLOCK_M=128,num_warps=4", or "seed") to the code it was found on."""
    if config == "seed":
        return code
    params = _plan(code)
    known = {p.key for p in params}
    assignment = {k: int(v) for k, v in (item.split("=") for item in config.split(","))}
    unknown = set(assignment) - known
    if unknown:
        raise KeyError(f"the code has no tunable parameter {sorted(unknown)}")
    return render(code, params, assignment)


def render(code: str, params: list[Param], assignment: dict[str, int]) -> str:
    """The code with each assigned parameter's literals replaced (or its keyword inserted); all else byte-identical."""
    edits: list[tuple[int, int, str]] = []
    inserted: dict[int, list[str]] = {}
    for p in params:
        value = assignment.get(p.key, p.current)
        if value == p.current:
            continue
        edits += [(start, end, str(value)) for start, end in p.literals]
        for offset, keyword in p.inserts:
            inserted.setdefault(offset, []).append(f"{keyword}={value}")
    raw = code.encode()
    for offset, keywords in inserted.items():
        edits.append(_insertion(raw, offset, keywords))
    for start, end, text in sorted(edits, reverse=True):
        raw = raw[:start] + text.encode() + raw[end:]
    return raw.decode()


# ----------------------------------------------------------------------------------------------------------------
# Search plan


def first_round(params: list[Param], max_variants: int) -> list[dict[str, int]]:
    """Joint tile scalings crossed with num_warps first, then one parameter at a time, without repeats."""
    if not params:
        return []
    joint = [a for a in _joint_moves(params) if _plausible(params, a)]
    single = [a for a in _single_moves(params) if _plausible(params, a)]
    keep_single = min(len(single), max_variants // 3)
    chosen = _unique(joint[: max_variants - keep_single] + single + joint)
    return chosen[:max_variants]


def neighbours(params: list[Param], around: dict[str, int], limit: int) -> list[dict[str, int]]:
    """Second round: each parameter one step up or down from the best assignment so far."""
    moved = _with_current(params, around)
    out = []
    for p in params:
        i = p.values.index(moved[p.key])
        for j in (i - 1, i + 1):
            if 0 <= j < len(p.values):
                out.append(_changed(params, {**moved, p.key: p.values[j]}))
    return [a for a in _unique(out) if _plausible(params, a)][:limit]


def _joint_moves(params: list[Param]) -> list[dict[str, int]]:
    blocks = [p for p in params if p.kind == "block"]
    warps = [p for p in params if p.kind == "num_warps"]
    warp_choices = [None] + sorted({v for p in warps for v in p.values})
    moves = []
    for factor in JOINT_FACTORS:
        scaled = {p.key: _scaled(p, factor) for p in blocks}
        if factor != 1 and all(v == p.current for p, v in zip(blocks, scaled.values(), strict=True)):
            continue
        for w in warp_choices:
            chosen = dict(scaled)
            chosen.update({p.key: w for p in warps if w in p.values})
            moves.append(_changed(params, chosen))
    return moves


def _single_moves(params: list[Param]) -> list[dict[str, int]]:
    return [{p.key: v} for p in params for v in p.values if v != p.current]


def _scaled(p: Param, factor: float) -> int:
    value = int(p.current * factor)
    return value if value in p.values else p.current


def _changed(params: list[Param], assignment: dict[str, int]) -> dict[str, int]:
    """Only the entries that differ from the code's current values, in the code's parameter order."""
    return {p.key: assignment[p.key] for p in params if assignment.get(p.key, p.current) != p.current}


def _with_current(params: list[Param], assignment: dict[str, int]) -> dict[str, int]:
    return {p.key: assignment.get(p.key, p.current) for p in params}


def _unique(assignments: list[dict[str, int]]) -> list[dict[str, int]]:
    seen, out = set(), []
    for a in assignments:
        key = tuple(sorted(a.items()))
        if a and key not in seen:
            seen.add(key)
            out.append(a)
    return out


def _plausible(params: list[Param], assignment: dict[str, int]) -> bool:
    """Drop tiles no warp count can hold in registers: they spill, compile slowly and only waste the sweep."""
    values = _with_current(params, assignment)
    for launch in {i for p in params for i in p.launches}:
        own = [p for p in params if launch in p.launches]
        blocks = sorted((values[p.key] for p in own if p.kind == "block"), reverse=True)
        warps = next((values[p.key] for p in own if p.kind == "num_warps"), DEFAULT_LAUNCH["num_warps"])
        threads = 32 * warps
        if any(p.dot for p in own) and len(blocks) >= 2 and blocks[0] * blocks[1] / threads > MAX_ACC_PER_THREAD:
            return False
        if blocks and math.prod(blocks) / threads > MAX_TILE_PER_THREAD and not any(p.dot for p in own):
            return False
    return True


# ----------------------------------------------------------------------------------------------------------------
# Finding the parameters (AST)


@dataclass
class _Kernel:
    constexprs: set[str]
    autotuned: bool
    has_loop: bool
    has_dot: bool


def _plan(code: str) -> list[Param]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    finder = _Finder(code, tree)
    params = finder.params()
    return [p for p in params if _renders(code, params, p)]


def _renders(code: str, params: list[Param], p: Param) -> bool:
    """An inserted keyword must land inside its call: re-parse once per parameter to be sure."""
    if not p.inserts:
        return True
    other = next((v for v in p.values if v != p.current), None)
    if other is None:
        return False
    try:
        ast.parse(render(code, params, {p.key: other}))
    except SyntaxError:
        return False
    return True


class _Finder:
    def __init__(self, code: str, tree: ast.Module):
        self.code = code
        self.tree = tree
        self.line_starts = _line_starts(code)
        self.kernels = _kernels(tree)
        self.module_bindings = _bindings(tree.body)

    def params(self) -> list[Param]:
        groups: dict[tuple[str, str], list] = {}
        for call, scopes in _launches(self.tree, self.kernels):
            kernel = call.func.value.id
            for keyword, site in self._sites(call, kernel, scopes):
                groups.setdefault((kernel, keyword), []).append((id(call), site))
        return _name(self._merge(groups))

    def _sites(self, call: ast.Call, kernel: str, scopes: list[ast.AST]):  # noqa: ANN202
        info = self.kernels[kernel]
        given = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        for keyword, value in given.items():
            if keyword in info.constexprs or keyword in LAUNCH_OPTIONS:
                yield keyword, self._resolve(value, scopes)
        for keyword in LAUNCH_OPTIONS:
            if keyword not in given and (keyword == "num_warps" or info.has_loop):
                yield keyword, ("insert", self._offset(call.end_lineno, call.end_col_offset) - 1, keyword)

    def _merge(self, groups: dict[tuple[str, str], list]) -> list[Param]:
        params: list[Param] = []
        by_span: dict[tuple[int, int], Param] = {}
        for (kernel, keyword), sites in groups.items():
            if any(site is None for _, site in sites):
                continue  # one launch passes an expression we cannot rewrite: leave the whole group alone
            param = self._param(kernel, keyword, sites)
            if param is None:
                continue
            shared = next((by_span[s] for s in param.literals if s in by_span), None)
            if shared is not None:  # one literal feeds several launches or kernels: they move together
                if shared.current != param.current or shared.kind != param.kind:
                    continue
                shared.literals += [s for s in param.literals if s not in shared.literals]
                shared.inserts += param.inserts
                shared.launches |= param.launches
                shared.dot |= param.dot
                continue
            params.append(param)
            by_span.update({s: param for s in param.literals})
        return params

    def _param(self, kernel: str, keyword: str, sites: list) -> Param | None:
        kind = keyword if keyword in LAUNCH_OPTIONS else "block"
        literals, inserts, currents = [], [], set()
        for _, site in sites:
            if site[0] == "insert":
                inserts.append((site[1], site[2]))
                currents.add(DEFAULT_LAUNCH[keyword])
            else:
                literals.append((site[1], site[2]))
                currents.add(site[3])
        if len(currents) != 1:
            return None
        current = currents.pop()
        dot = self.kernels[kernel].has_dot
        values = _values(kind, current, dot)
        if len(values) < 2:
            return None
        spans = list(dict.fromkeys(literals))
        launches = {launch for launch, _ in sites}
        return Param(f"{kernel}.{keyword}", kind, current, values, spans, inserts, launches, dot)

    def _resolve(self, value: ast.AST, scopes: list[ast.AST]):  # noqa: ANN202
        """The int literal a launch argument comes from: itself, a local or module name, or a self attribute."""
        node = None
        if isinstance(value, ast.Constant):
            node = value
        elif isinstance(value, ast.Name):
            node = self._name_literal(value.id, scopes)
        elif isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) and value.value.id == "self":
            node = self._attribute_literal(value.attr, scopes)
        if not _is_int_literal(node):
            return None
        start = self._offset(node.lineno, node.col_offset)
        return ("literal", start, self._offset(node.end_lineno, node.end_col_offset), node.value)

    def _name_literal(self, name: str, scopes: list[ast.AST]) -> ast.AST | None:
        for scope in reversed(scopes):
            if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                bound = _bindings(list(ast.walk(scope)), nested=True, args=scope.args)
                if name in bound:
                    return bound[name]
        return self.module_bindings.get(name)

    def _attribute_literal(self, attr: str, scopes: list[ast.AST]) -> ast.AST | None:
        cls = next((s for s in reversed(scopes) if isinstance(s, ast.ClassDef)), None)
        if cls is None:
            return None
        found = []
        for node in ast.walk(cls):
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr == attr and _is_self(target.value):
                        found.append(node.value if isinstance(node, ast.Assign) else None)
        return found[0] if len(found) == 1 else None

    def _offset(self, lineno: int, col: int) -> int:
        return self.line_starts[lineno - 1] + col


def _values(kind: str, current: int, dot: bool) -> list[int]:
    if kind == "num_stages":
        return sorted(set(SWEEP_LAUNCH[kind]) | {current}) if current > 0 else []
    if current <= 0 or current & (current - 1):
        return []  # tiles and warp counts are powers of two; any other value is a problem constant
    if kind == "num_warps":
        return sorted(set(SWEEP_LAUNCH[kind]) | {current})
    low = min(current, max(current // 4, 16 if dot else 1))
    high = min(current * 8, max(current, BLOCK_CAP))
    return [1 << e for e in range(low.bit_length() - 1, high.bit_length())]


def _name(params: list[Param]) -> list[Param]:
    """Keys are the bare keyword (BLOCK_M, num_warps) unless two kernels use it; then kernel.keyword."""
    bare = [p.key.split(".", 1)[1] for p in params]
    for p, short in zip(params, bare, strict=True):
        if bare.count(short) == 1:
            p.key = short
    return params


def _kernels(tree: ast.Module) -> dict[str, _Kernel]:
    kernels = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        names = [_decorator_name(d) for d in node.decorator_list]
        if "jit" not in names:
            continue
        args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        constexprs = {a.arg for a in args if a.annotation is not None and _dotted(a.annotation).endswith("constexpr")}
        body = list(ast.walk(node))
        kernels[node.name] = _Kernel(
            constexprs=constexprs,
            autotuned="autotune" in names,
            has_loop=any(isinstance(n, ast.For | ast.While) for n in body),
            has_dot=any(isinstance(n, ast.Call) and _dotted(n.func).split(".")[-1] == "dot" for n in body),
        )
    return kernels


def _launches(tree: ast.Module, kernels: dict[str, _Kernel]) -> list[tuple[ast.Call, list[ast.AST]]]:
    """kernel[grid](...) calls of non-autotuned jit kernels, each with its enclosing scopes (outermost first)."""
    found = []

    def visit(node: ast.AST, scopes: list[ast.AST]) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in kernels and not kernels[target.id].autotuned:
                found.append((node, scopes))
        inner = scopes + [node] if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Lambda) else scopes
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(tree, [])
    return found


def _bindings(nodes: list[ast.AST], *, nested: bool = False, args: ast.arguments | None = None) -> dict:
    """name -> the value of its only binding; names bound more than once (or not by `=`) map to None."""
    counts: dict[str, int] = {}
    values: dict[str, ast.AST | None] = {}

    def bind(name: str, value: ast.AST | None) -> None:
        counts[name] = counts.get(name, 0) + 1
        values[name] = value if counts[name] == 1 else None

    if args is not None:
        for a in args.posonlyargs + args.args + args.kwonlyargs:
            bind(a.arg, None)
    pool = nodes if nested else [n for top in nodes for n in ast.walk(top) if not _inside_def(top, n)]
    for node in pool:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                _bind_target(target, node.value, bind)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign) and isinstance(node.target, ast.Name):
            bind(node.target.id, None)
        elif isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name):
            bind(node.target.id, None)
        elif isinstance(node, ast.NamedExpr):
            bind(node.target.id, None)
    return {name: values[name] for name in values}


def _inside_def(top: ast.AST, node: ast.AST) -> bool:
    """Module-level bindings only: skip whatever sits inside a function or class body."""
    return node is not top and isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)


def _bind_target(target: ast.AST, value: ast.AST, bind: Callable) -> None:
    if isinstance(target, ast.Name):
        bind(target.id, value)
    elif isinstance(target, ast.Tuple | ast.List):
        pairs = value.elts if isinstance(value, ast.Tuple | ast.List) and len(value.elts) == len(target.elts) else None
        for i, element in enumerate(target.elts):
            if isinstance(element, ast.Name):
                bind(element.id, pairs[i] if pairs else None)


def _is_int_literal(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _decorator_name(node: ast.AST) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return _dotted(target).split(".")[-1]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value  # string annotations: "tl.constexpr"
    return ""


def _line_starts(code: str) -> list[int]:
    starts, total = [], 0
    for line in code.encode().splitlines(keepends=True):
        starts.append(total)
        total += len(line)
    return starts + [total]


def _insertion(raw: bytes, close: int, keywords: list[str]) -> tuple[int, int, str]:
    """An edit adding keywords after a launch's last argument (before its ")"), keeping a trailing comma's style."""
    before = raw[:close].rstrip()
    at = len(before)
    joined = ", ".join(keywords)
    if before.endswith(b"("):
        return at, at, joined
    if before.endswith(b","):
        return at, at, f" {joined},"
    return at, at, f", {joined}"


# ----------------------------------------------------------------------------------------------------------------
# The sweep: time variants on the GPU, verify the fastest few, keep the fastest verified one


def autotune(
    code: str,
    harness: dict,
    workdir: Path,
    *,
    verify: Callable[[str], object],
    max_variants: int = 24,
    rounds: int = 2,
    top_k: int = 3,
    timeout_s: float = 900,
    min_gain: float = 0.01,
    confirm_rounds: int = ROUNDS,
    timing_options: dict | None = None,
) -> dict:
    """Sweep the code's launch parameters; `verify(code)` returns a verdict dict (or bool) for a variant.

    Returns {"code", "label", "ms", "seed_ms", "improved", "trials": [...], "verified": [...], "confirm": {...}},
    or {"skipped": ...} on CPU. The sweep's single-round times only rank the variants. The fastest verified one
    is then timed together with the seed in one interleaved call (confirm_rounds rounds) and replaces the seed only
    when its interval clears the seed's by min_gain (stats.clears); "confirm" holds both results and the decision.
    A variant whose code is the seed's or an earlier variant's (stats.normalised) is never timed.
    timing_options go to every time_candidates call (the run's tf32, rtol, atol, ceilings).
    """
    from kernelagent.bench.timing import time_candidates

    params = _plan(code)
    if not params:
        return {"code": code, "label": "seed", "improved": False, "trials": [], "reason": "no tunable parameters"}
    trials: dict[str, dict] = {}
    assignments: dict[str, dict[str, int]] = {}
    forms = {normalised(code)}
    deadline = time.monotonic() + timeout_s
    plan = [{}] + first_round(params, max_variants)
    for round_no in range(1, rounds + 1):
        todo = [a for a in plan if label(a) not in trials and (not a or _new_form(render(code, params, a), forms))]
        if not todo:
            break
        # The last round may use all that is left; earlier ones keep a third back for the rounds after them.
        share = (deadline - time.monotonic()) * (1.0 if round_no == rounds else 0.65)
        seed_ms = trials.get("seed", {}).get("ms")
        results = time_candidates(
            [render(code, params, a) for a in todo],
            harness,
            Path(workdir) / f"round{round_no}",
            timeout_s=max(60.0, share),
            labels=[label(a) for a in todo],
            abort_ms=SLOW_FACTOR * seed_ms if seed_ms else None,
            abort_factor=SLOW_FACTOR,
            **(timing_options or {}),
        )
        if results and "skipped" in results[0]:
            return {"skipped": results[0]["skipped"]}
        for a, result in zip(todo, results, strict=True):
            trials[label(a)] = {"label": label(a), "round": round_no, **result}
            assignments[label(a)] = a
        best = _fastest(trials)
        if best is None:
            break
        plan = neighbours(params, assignments[best], max(4, max_variants // 2))
    found = _choose(code, params, trials, assignments, verify, top_k, min_gain)
    if found["improved"]:
        left = max(60.0, deadline - time.monotonic())
        found = _confirm(code, found, harness, Path(workdir) / "confirm", min_gain, confirm_rounds, left,
                         timing_options or {})
    return found


def _new_form(variant: str, forms: set[str]) -> bool:
    """True (and remembered) when the variant differs from the seed and every earlier variant beyond formatting."""
    form = normalised(variant)
    if form in forms:
        return False
    forms.add(form)
    return True


def _confirm(seed_code: str, found: dict, harness: dict, workdir: Path, min_gain: float, rounds: int,
             timeout_s: float, timing_options: dict) -> dict:
    """Seed and winner timed together, interleaved; the winner stays only if its interval clears the seed's."""
    seed, winner = time_together([seed_code, found["code"]], harness, workdir, labels=["seed", found["label"]],
                                 rounds=rounds, timeout_s=timeout_s, **timing_options)
    if "ms" not in seed or "ms" not in winner:
        decision = {"clears": False, "how": "none",
                    "why": f"not timed: {seed.get('error') or winner.get('error')}"}
    else:
        decision = clears(winner, seed, margin=min_gain)
    confirm = {"seed": seed, "winner": winner, **decision}
    if decision["clears"]:
        return {**found, "ms": winner["ms"], "seed_ms": seed["ms"], "confirm": confirm}
    return {**found, "code": seed_code, "label": "seed", "assignment": {}, "improved": False,
            "ms": seed.get("ms"), "seed_ms": seed.get("ms"), "confirm": confirm,
            "reason": f"{found['label']} did not clear the seed: {decision['why']}"}


def _choose(code, params, trials, assignments, verify, top_k, min_gain) -> dict:  # noqa: ANN001
    seed_ms = trials.get("seed", {}).get("ms")
    bar = seed_ms * (1 - min_gain) if seed_ms else float("inf")
    ranked = sorted((t for t in trials.values() if "ms" in t and (t["label"] == "seed" or t["ms"] <= bar)),
                    key=lambda t: t["ms"])
    verified = []
    winner = trials.get("seed", {"label": "seed"})
    for trial in ranked[:top_k]:
        if trial["label"] == "seed":
            winner = trial
            break
        verdict = verify(render(code, params, assignments[trial["label"]]))
        ok = verdict if isinstance(verdict, bool) else bool(verdict.get("passed"))
        trial["verified"] = ok
        verified.append({"label": trial["label"], "passed": ok, "reason": _reason(verdict)})
        if ok:
            winner = trial
            break
    chosen = assignments.get(winner["label"], {})
    return {
        "code": render(code, params, chosen),
        "label": winner["label"],
        "assignment": chosen,
        "ms": winner.get("ms"),
        "seed_ms": seed_ms,
        "improved": winner["label"] != "seed",
        "trials": sorted(trials.values(), key=lambda t: t.get("ms", math.inf)),
        "verified": verified,
    }


def _fastest(trials: dict[str, dict]) -> str | None:
    timed = [t for t in trials.values() if "ms" in t]
    return min(timed, key=lambda t: t["ms"])["label"] if timed else None


def _reason(verdict: object) -> str:
    return verdict.get("reason", "") if isinstance(verdict, dict) else ("passed" if verdict else "failed")

