"""The `not_allowed` rule: every name, module member and attribute the module reaches must be on the allow-list."""

from __future__ import annotations

import ast

from kernelagent.verify.policy.allowlist import (
    _VALUE_DENY,
    BUILTINS,
    MEMBERS,
    is_module,
    path_allowed,
    value_attr_allowed,
)
from kernelagent.verify.policy.facts import _Facts, _lit, _module_level

# dunders a wrapper may name: super().__init__(...), fn.__name__ in a message
_DUNDERS = frozenset({"__init__", "__name__", "__version__"})


def _bound(tree: ast.Module) -> set[str]:
    """Every name the module binds, in any scope (flow-insensitive: a name bound anywhere counts as the module's)."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
        elif isinstance(n, ast.Global | ast.Nonlocal):
            out.update(n.names)
        elif isinstance(n, ast.alias):
            out.add(n.asname or n.name.split(".")[0])
        elif isinstance(n, ast.MatchAs | ast.MatchStar) and n.name:
            out.add(n.name)
    return out


def _own_attrs(tree: ast.Module, f: _Facts) -> set[str]:
    """Attribute names the module itself defines: methods, class attributes, `obj.x = ...` targets, keywords."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store) and not _kernel_attr(n, f):
            out.add(n.attr)
        elif isinstance(n, ast.keyword) and n.arg:
            out.add(n.arg)
        elif isinstance(n, ast.Call) and _dotted_name(n.func) in ("setattr", "register_buffer", "register_parameter",
                                                                  "add_module") and _lit(n, 1 if _dotted_name(
                                                                      n.func) == "setattr" else 0):
            out.add(_lit(n, 1 if _dotted_name(n.func) == "setattr" else 0))
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for s in cls.body:
            targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(s, ast.AnnAssign) else []
            out.update(t.id for t in targets if isinstance(t, ast.Name))
    return out


def _kernel_attr(n: ast.Attribute, f: _Facts) -> bool:
    """`kernel.src = ...`: an attribute of a @triton.jit function (its source, its cache) written by the module."""
    return isinstance(n.value, ast.Name) and n.value.id in f.jit


def _dotted_name(e: ast.AST) -> str | None:
    return e.attr if isinstance(e, ast.Attribute) else e.id if isinstance(e, ast.Name) else None


def _attr_ok(attr: str, base: ast.AST, own: set[str]) -> bool:
    if attr in _VALUE_DENY:
        return False
    if attr in own and attr not in _BANNED_DUNDER:
        return True
    if attr.startswith("__"):
        return attr in _DUNDERS
    if attr.startswith("_"):  # private attributes only of the module's own objects
        return isinstance(base, ast.Name) and base.id in ("self", "cls", "ctx")
    return value_attr_allowed(attr)


_BANNED_DUNDER = frozenset({"__dict__", "__class__", "__globals__", "__code__", "__builtins__", "__subclasses__"})


def refusals(tree: ast.Module, f: _Facts) -> list[tuple[ast.AST, str]]:
    """(node, message) for each reach outside the allow-list."""
    bound, own, out = _bound(tree), _own_attrs(tree, f), []
    parent = {id(c): p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    aliases = {id(s.value) for s in _module_level(tree.body) if isinstance(s, ast.Assign)}
    for n in ast.walk(tree):
        up = parent.get(id(n))
        if isinstance(n, ast.Import | ast.ImportFrom):  # importing runs the module: only what the allow-list names
            names = [a.name for a in n.names] if isinstance(n, ast.Import) else [
                f"{n.module}.{a.name}" for a in n.names] if n.module and not n.level else ["." * n.level]
            out += [(n, f"importing `{m}` is not on the allow-list") for m in names
                    if not (m in MEMBERS or m == "__future__.annotations" or path_allowed(m))]
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store | ast.Del) and _kernel_attr(n, f):
            out.append((n, f"writing `{ast.unparse(n)}` changes a @triton.jit function after it was checked"))
        if isinstance(n, ast.Name | ast.Attribute) and not (isinstance(up, ast.Attribute) and up.value is n):
            path = f.resolve(n)  # the maximal chain: torch.serialization.pickle.loads, not each prefix
            if path is not None:
                if not path_allowed(path):
                    out.append((n, f"`{path}` is not on the allow-list of what a kernel module may use (torch "
                                   "allocation, views, dtypes and device facts; triton and triton.language; math)"))
                elif is_module(path) and id(n) not in aliases:
                    out.append((n, f"the module `{path}` is used as a value; refer to its members directly"))
                continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in f.aliases \
                and n.id not in bound and n.id not in BUILTINS:
            out.append((n, f"`{n.id}` is neither defined by the module nor an allowed builtin"))
        elif isinstance(n, ast.Attribute) and f.resolve(n.value) is None and not _attr_ok(n.attr, n.value, own):
            out.append((n, f"the attribute `.{n.attr}` is not on the allow-list of tensor, layer, dtype, config and "
                           "container attributes"))
        elif isinstance(n, ast.Call) and _dotted_name(n.func) in ("getattr", "setattr", "hasattr", "delattr") \
                and isinstance(n.func, ast.Name) and (name := _lit(n, 1)) and f.resolve(n.args[0]) is None \
                and not _attr_ok(name, n.args[0], own):
            out.append((n, f"`{n.func.id}(..., {name!r})` reaches an attribute that is not on the allow-list"))
    return out

