"""The policy's rules over the collected facts and the forward path; `check_policy` runs them all."""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass

from kernelagent.verify.policy.allowlist import MEMBERS, encoding_problem
from kernelagent.verify.policy.facts import _Class, _dotted, _Facts, _lit, _torch_ok
from kernelagent.verify.policy.forward import _Forward, _is_launch
from kernelagent.verify.policy.import_time import _import_time_code
from kernelagent.verify.policy.reach import refusals
from kernelagent.verify.policy.vocabulary import (
    _ALLOWED_MODULES,
    _BUILTIN_COMPUTE,
    _ENV_NAMES,
    _EXITS,
    _FILE_PATHS,
    _FIX,
    _FORBIDDEN_FROM,
    _INTROSPECT_NAMES,
    _INTROSPECT_PATHS,
    _NN_CALLS,
    _OPS,
    _PROCESS_ATTRS,
    _PROCESS_ROOTS,
    _tensor_compute_methods,
)


@dataclass(frozen=True)
class Violation:
    rule: str  # stable snake_case rule name
    line: int  # 1-based line in the candidate source (0 if not applicable)
    message: str  # one actionable sentence


RULES: dict[str, str] = {
    "no_triton_kernel": "The module defines no @triton.jit function.",
    "missing_entry": "The entry point (class ModelNew with forward / def kernel_function) is missing.",
    "torch_compute_in_forward": "PyTorch compute (torch ops, nn layers, tensor methods/operators) on the forward path.",
    "forbidden_import": "Import outside the allowlist (torch, torch.nn[.functional], triton[.language], small stdlib).",
    "file_or_process_access": "Files, processes, os/sys, exec/eval, or numpy()/tolist() escapes to Python.",
    "environment_access": "Reading environment variables or __builtins__.",
    "introspection": "globals()/getattr tricks, monkeypatching, frames/dunders, dispatch modes, hooks, RNG reseeding.",
    "fallback_try_except": "try/except on the forward path that can swallow a failed launch or fall back to PyTorch.",
    "early_exit": "exit()/sys.exit/os._exit/signals anywhere, or import-time code beyond definitions and constants.",
    "not_allowed": "A name, module member or attribute outside the allow-list (the default for anything unnamed).",
    "source_encoding": "Source that is not plain UTF-8 (a coding declaration or NUL byte changes what Python runs).",
}


def check_policy(source: str, *, entry: str = "ModelNew") -> list[Violation]:
    """All policy violations in a candidate's source, sorted by line. Raises SyntaxError for unparsable source."""
    out: dict[tuple[str, int, str], Violation] = {}
    if (problem := encoding_problem(source)) is not None:
        # Python would read the file differently from the text we check: judge nothing else
        return [Violation("source_encoding", 1, f"The module must be plain UTF-8 text: {problem}; remove it.")]
    tree = ast.parse(source)
    f = _Facts(tree)

    def add(rule: str, node: ast.AST | None, message: str) -> None:
        line = getattr(node, "lineno", 0)
        out.setdefault((rule, line, message), Violation(rule, line, message))

    if not f.jit_nodes:
        add("no_triton_kernel", None, "No @triton.jit function found; write the computation as a Triton kernel and "
                                      "launch it from the entry point.")
    entries: list[tuple[ast.AST, _Class | None, str]] = []
    if entry == "kernel_function":
        if "kernel_function" in f.functions:
            entries.append((f.functions["kernel_function"], None, "kernel_function"))
        else:
            add("missing_entry", None, "Define a plain Python `def kernel_function(...)` wrapper (not @triton.jit) "
                                       "that launches your kernel(s) and returns the result.")
    else:
        cls = f.classes.get("ModelNew")
        # nn.Module.__call__ reaches forward through these; overriding any of them puts code on the forward path
        entries += [(cls.methods[m], cls, f"ModelNew.{m}") for m in sorted(_NN_CALLS) if cls and m in cls.methods]
        if not entries:
            add("missing_entry", cls.node if cls else None, "Define `class ModelNew(nn.Module)` with a `forward` "
                "method taking the same inputs as Model.forward and launching your Triton kernel(s).")
    fw = _Forward(f, entries)
    _rule_compute(fw, add)
    _rule_fallback(fw, add)
    _rule_module(f, tree, add)
    for node, why in refusals(tree, f):
        add("not_allowed", node, f"Not allowed: {why}.")
    return sorted(out.values(), key=lambda v: (v.line, v.rule))


def _rule_compute(fw: _Forward, add) -> None:
    for k in fw.fns:
        _compute_in(fw, k, add)


def _compute_in(fw: _Forward, k: int, add) -> None:
    fn, _, name = fw.fns[k]
    nodes, methods, t = list(fw.nodes(fn)), _tensor_compute_methods(), functools.partial(fw.t, k=k)
    funcs = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
    in_loop = {id(x) for n in nodes if isinstance(n, ast.For | ast.While | ast.ListComp | ast.GeneratorExp
                                                   | ast.SetComp | ast.DictComp) for x in ast.walk(n)}

    def flag(node: ast.AST, what: str) -> None:
        add("torch_compute_in_forward", node, f"`{name}` (on the forward path) {what}; {_FIX}.")

    for n in nodes:
        if isinstance(n, ast.Call):
            func, path, args = n.func, fw.resolve(n.func, k), [*n.args, *(kw.value for kw in n.keywords)]
            if path and not _torch_ok(path, True):
                flag(n, f"calls {path}()")
            elif fw.is_nn(func, k) or (isinstance(func, ast.Attribute) and func.attr in _NN_CALLS
                                       and fw.is_nn(func.value, k)):
                add("torch_compute_in_forward", n, f"`{name}` calls the nn layer `{ast.unparse(func)}`; pass its "
                    "parameters (e.g. .weight/.bias) to your kernel instead of calling the layer.")
            elif path is None and isinstance(func, ast.Attribute) and func.attr in methods \
                    and not (fw.targets(func, k, True) and not t(func.value)):  # helper.add(...) is local code
                flag(n, f"calls tensor method .{func.attr}()")
            elif _dotted(func) in _BUILTIN_COMPUTE and func.id not in fw.f.functions and any(map(t, args)):
                flag(n, f"applies builtin {func.id}() to tensors")
            elif (path or "").split(".")[0] in ("math", "functools", "itertools", "collections") \
                    and any(map(t, args)):
                flag(n, f"passes tensors to {path}()")
            elif id(n) in in_loop and ((isinstance(func, ast.Attribute) and func.attr == "item" and t(func.value))
                                       or (_dotted(func) in ("float", "int", "bool") and any(map(t, args)))):
                flag(n, "reads tensor elements one by one into Python in a loop (Python-level compute)")
        elif isinstance(n, ast.Name | ast.Attribute) and isinstance(n.ctx, ast.Load) and id(n) not in funcs \
                and id(n) not in inner and (path := fw.resolve(n, k)) and not _torch_ok(path, False):
            flag(n, f"references {path} (a PyTorch op or module) as a value")
        elif isinstance(n, ast.BinOp) and (isinstance(n.op, ast.MatMult) or t(n.left) or t(n.right)):
            flag(n, f"applies the `{_OPS.get(type(n.op), '?')}` operator to a tensor (integer shape/grid "
                    "arithmetic is fine)")
        elif (isinstance(n, ast.UnaryOp) and not isinstance(n.op, ast.Not) and t(n.operand)) \
                or (isinstance(n, ast.Compare) and t(n)):
            flag(n, "applies a unary or comparison operator to a tensor")
        elif isinstance(n, ast.AugAssign) and (t(n.target) or t(n.value)):
            flag(n, f"updates a tensor with an operator (`{ast.unparse(n)[:40]}`)")
        elif isinstance(n, ast.For | ast.comprehension) and t(n.iter) and not fw.container(n.iter, k):
            flag(n.iter, "iterates over a tensor's elements in Python")


def _rule_fallback(fw: _Forward, add) -> None:
    launching = fw.launches()
    for k, (fn, _, name) in fw.fns.items():
        for n in fw.nodes(fn):
            if not isinstance(n, ast.Try | ast.TryStar):
                continue
            launches = any(_is_launch(x, fw.f) or (isinstance(x, ast.Call) and any(
                id(t[0]) in launching for t in fw.targets(x.func, k, True))) for s in n.body for x in ast.walk(s))
            recovery = [s for h in n.handlers for s in h.body] + n.orelse + n.finalbody
            if launches and any(not isinstance(s, ast.Raise) for s in recovery):
                add("fallback_try_except", n, f"`{name}` wraps a kernel launch in try/except with code other than "
                    "`raise`; let launch errors propagate instead of falling back or swallowing them.")
            for h in n.handlers:
                caught = {_dotted(x) for x in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type])}
                if (h.type is None or caught & {"Exception", "BaseException"}) \
                        and not all(isinstance(s, ast.Raise) for s in h.body):
                    add("fallback_try_except", h, f"`{name}` has a broad `except` that swallows errors on the "
                                                  "forward path; remove it or re-raise.")


def _rule_module(f: _Facts, tree: ast.Module, add) -> None:
    """Rules that apply anywhere in the module (kernels and __init__ included)."""
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Import | ast.ImportFrom):
            for m in [a.name for a in n.names] if isinstance(n, ast.Import) else ["." * n.level + (n.module or "")]:
                if m not in _ALLOWED_MODULES and m not in MEMBERS:
                    add("forbidden_import", n, f"Import of `{m}` is not allowed; import only torch, torch.nn"
                        "(.functional), triton, triton.language, math, typing, functools, dataclasses, itertools, "
                        "collections, numbers or enum.")
            if isinstance(n, ast.ImportFrom) and n.module in ("torch", "triton") and not n.level \
                    and any(a.name in _FORBIDDEN_FROM or a.name.startswith("_") for a in n.names):
                add("forbidden_import", n, f"Importing internals/submodules from `{n.module}` is not allowed; use "
                                           "only the public tensor, nn and triton APIs.")
        elif isinstance(n, ast.Call):
            fname = n.func.id if isinstance(n.func, ast.Name) and n.func.id not in f.functions else None
            path = fname if fname and fname not in f.aliases else f.resolve(n.func)
            if fname == "__import__" or path == "importlib.import_module":
                add("forbidden_import", n, "Dynamic imports (__import__/importlib) are not allowed.")
            if fname in ("open", "exec", "eval", "compile", "input", "breakpoint"):
                add("file_or_process_access", n, f"`{fname}()` is not allowed in a kernel module; write the "
                                                 "computation as Triton code.")
            if isinstance(n.func, ast.Attribute) and n.func.attr in ("numpy", "tolist", "__array__"):
                add("file_or_process_access", n, f"`.{n.func.attr}()` moves tensor data into Python/NumPy; keep it "
                                                 "on the device and compute in a Triton kernel.")
            if fname in ("globals", "locals", "vars", "dir"):
                add("introspection", n, f"`{fname}()` is not allowed; refer to names directly.")
            if fname in ("getattr", "setattr", "delattr") and len(n.args) >= 2 \
                    and (_lit(n, 1) is None or f.resolve(n.args[0]) is not None):
                add("introspection", n, f"`{fname}` with a computed name or on a module is not allowed; use plain "
                                        "attribute access.")
            if path in _EXITS or (path or "").startswith("signal."):
                add("early_exit", n, f"`{path}()` would end or signal the process; return the kernel's output from "
                                     "the entry point instead.")
        elif isinstance(n, ast.Raise) and _dotted(getattr(n.exc, "func", n.exc)) in (
                "SystemExit", "KeyboardInterrupt", "GeneratorExit"):
            add("early_exit", n, "Raising SystemExit/KeyboardInterrupt would end the process; raise a normal "
                                 "exception or return the result.")
        elif isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            for tgt in getattr(n, "targets", None) or [n.target]:
                root = tgt
                while isinstance(root, ast.Attribute | ast.Subscript):
                    root = root.value
                if tgt is not root and isinstance(root, ast.Name) and root.id in f.aliases:
                    add("introspection", n, f"Assigning to `{ast.unparse(tgt)}` monkeypatches an imported module; "
                                            "never modify torch, triton or other modules.")
        elif isinstance(n, ast.FunctionDef) and n.name in ("__torch_function__", "__torch_dispatch__"):
            add("introspection", n, f"Defining {n.name} intercepts PyTorch dispatch; this is not allowed.")
        elif isinstance(n, ast.ClassDef) and n.keywords:
            add("introspection", n, "Class keywords (metaclass=...) run custom code at class creation; remove them.")
        elif isinstance(n, ast.Attribute | ast.Name):
            ident = n.attr if isinstance(n, ast.Attribute) else n.id
            if ident in _ENV_NAMES:
                add("environment_access", n, f"Accessing `{ident}` is not allowed; kernels take all their inputs as "
                                             "arguments.")
            if ident in _INTROSPECT_NAMES:
                add("introspection", n, f"`{ident}` is introspection/dispatch/hook machinery and is not allowed.")
            if isinstance(n, ast.Attribute) and ident in _PROCESS_ATTRS:
                add("file_or_process_access", n, f"Reaching `.{ident}` gives access to the OS/interpreter; it is not "
                                                 "allowed in a kernel module.")
            if id(n) not in inner and (path := f.resolve(n)):
                if path.split(".")[0] in _PROCESS_ROOTS or path.startswith(_FILE_PATHS):
                    add("file_or_process_access", n, f"`{path}` accesses files, processes or the interpreter; it is "
                                                     "not allowed in a kernel module.")
                if path.startswith(_INTROSPECT_PATHS):
                    add("introspection", n, f"`{path}` touches PyTorch dispatch/interpreter internals or global "
                                            "RNG/default state; it is not allowed.")
    for s in _import_time_code(tree.body, f):
        add("early_exit", s, f"Module/class-level code `{ast.unparse(s).splitlines()[0][:60]}` runs at import; keep "
                             "only imports, constants, Config lists and definitions (no prints, tests or __main__).")

