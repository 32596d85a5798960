"""What may run when the module is imported: definitions, constants, Config lists, version/device probes, and
import fallbacks between Triton versions' module paths. Everything else at module or class level is refused."""

from __future__ import annotations

import ast

from kernelagent.verify.policy.facts import _dotted, _Facts
from kernelagent.verify.policy.vocabulary import _DECORATORS, _IMPORT_TIME_CALLS, _w

# Methods of plain values (strings, lists, dicts) a config builder or probe may call
_VALUE_METHODS = _w("append extend startswith endswith split lower upper strip replace join get items keys values "
                    "format copy index count")
_FALLBACK_ERRORS = _w("ImportError ModuleNotFoundError AttributeError")


def _trusted_path(e: ast.AST, f: _Facts) -> str | None:
    """Dotted path of a callable run at import time; None for candidate-defined code (a local `def int(...)`)."""
    if isinstance(e, ast.Name) and (e.id in f.functions or e.id in f.classes):
        return None
    return f.resolve(e) or _dotted(e)


def _simple(e: ast.AST, f: _Facts, depth: int = 0) -> bool:
    """Can this expression be evaluated at import time without running arbitrary candidate code (literals, names,
    Configs, probes, and the module's own functions that only build Config lists or probe versions)?"""
    if isinstance(e, ast.Call):
        func, args = e.func, [*e.args, *(kw.value for kw in e.keywords)]
        path = _trusted_path(func, f)
        ok = path in _IMPORT_TIME_CALLS or (path or "").startswith(("triton.language.", "math.", "typing."))
        if isinstance(func, ast.Name) and func.id in f.functions:
            ok = _builder(f.functions[func.id], f, depth + 1)
        elif isinstance(func, ast.Attribute) and func.attr in _VALUE_METHODS and f.resolve(func.value) is None:
            ok = _simple(func.value, f, depth)  # "".join(...), configs.append(...), torch.version.hip.startswith
        return ok and all(_simple(a, f, depth) for a in args)
    if isinstance(e, ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr):
        return False
    return isinstance(e, ast.Lambda) or all(_simple(c, f, depth) for c in ast.iter_child_nodes(e))  # lambdas run later


def _builder(fn: ast.AST, f: _Facts, depth: int) -> bool:
    """A module function that only builds values (triton.Config lists) or probes versions/devices: its statements are
    returns, assignments, ifs and for loops over simple values, and all it calls is allowed at import time."""
    if depth > 4:
        return False
    if isinstance(fn, ast.Lambda):
        return _simple(fn.body, f, depth)
    if not isinstance(fn, ast.FunctionDef) or fn.decorator_list or fn.args.defaults:
        return False

    def ok(stmts: list[ast.stmt]) -> bool:
        for s in stmts:
            if isinstance(s, ast.Return | ast.Expr | ast.Assign | ast.AugAssign | ast.AnnAssign):
                if s.value is not None and not _simple(s.value, f, depth):
                    return False
                targets = getattr(s, "targets", None) or ([s.target] if hasattr(s, "target") else [])
                if not all(isinstance(t, ast.Name | ast.Tuple) for t in targets):
                    return False
            elif isinstance(s, ast.If):
                if not (_simple(s.test, f, depth) and ok(s.body) and ok(s.orelse)):
                    return False
            elif isinstance(s, ast.For):
                if not (_simple(s.iter, f, depth) and ok(s.body) and not s.orelse):
                    return False
            elif not isinstance(s, ast.Pass):
                return False
        return True

    return ok(fn.body)


def _import_time_code(stmts: list[ast.stmt], f: _Facts) -> list[ast.stmt]:
    """Module/class-body statements that do more than import, define, or bind simple values."""
    bad: list[ast.stmt] = []
    for s in stmts:
        if isinstance(s, ast.Import | ast.ImportFrom | ast.Pass) or (
                isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)):
            continue  # imports, docstrings
        if isinstance(s, ast.Try) and not s.finalbody and s.handlers and all(
                h.type is not None and {_dotted(x) for x in (h.type.elts if isinstance(h.type, ast.Tuple)
                                                            else [h.type])} <= _FALLBACK_ERRORS for h in s.handlers):
            # try: from triton.language.extra.libdevice import ... / except ImportError: from ...cuda.libdevice
            bad += [s] if _import_time_code([*s.body, *s.orelse, *(x for h in s.handlers for x in h.body)], f) else []
            continue
        if isinstance(s, ast.If) and _simple(s.test, f):  # a version or device probe choosing constants
            bad += [s] if _import_time_code([*s.body, *s.orelse], f) else []
            continue
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # decorators, default values and base classes run at import: trusted decorators and simple values only
            decorators = [_trusted_path(d.func if isinstance(d, ast.Call) else d, f) for d in s.decorator_list]
            run = [*s.decorator_list, *(s.bases if isinstance(s, ast.ClassDef) else s.args.defaults)]
            if any(d not in _DECORATORS for d in decorators) or not all(_simple(x, f) for x in run):
                bad.append(s)
            bad += _import_time_code(s.body, f) if isinstance(s, ast.ClassDef) else []
            continue
        targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(s, ast.AnnAssign) else None
        if targets is None or not all(isinstance(t, ast.Name) or (isinstance(t, ast.Tuple) and all(
                isinstance(x, ast.Name) for x in t.elts)) for t in targets) or (s.value and not _simple(s.value, f)):
            bad.append(s)
    return bad
