"""One pass over a candidate's AST: import aliases, functions, classes and their nn-layer/tensor attributes."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from kernelagent.verify.policy.vocabulary import _DTYPE_RE, _PROCESS_ATTRS, _TORCH_CALLS, _TORCH_REFS


def _dotted(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return node.id if isinstance(node, ast.Name) else None


def _lit(call: ast.Call, i: int) -> str | None:
    a = call.args[i] if len(call.args) > i else None
    return a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None


def _self_attr(node: ast.AST) -> str | None:
    """`self.X` -> "X"."""
    ok = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
    return node.attr if ok else None


def _names(e: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(e) if isinstance(n, ast.Name)]


def _torch_ok(path: str, is_call: bool) -> bool:
    parts = path.split(".")
    if parts[0] != "torch" or parts[1:2] == ["cuda"] or _PROCESS_ATTRS & set(parts):
        return True  # torch.cuda.*: device/stream management; torch.os.*: file_or_process_access reports it
    if len(parts) == 2 and parts[1] in _TORCH_CALLS:
        return True
    if not is_call and (parts[1:2] == ["version"] or path == "torch.__version__"):
        return True  # version facts: liger's is_hip() reads torch.version.hip
    return not is_call and (path in _TORCH_REFS or (len(parts) == 2 and bool(_DTYPE_RE.match(parts[1]))))


def _module_level(stmts: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, looking into module-level try/if blocks (import fallbacks, version probes)."""
    out: list[ast.stmt] = []
    for s in stmts:
        out.append(s)
        if isinstance(s, ast.Try | ast.If):
            out += _module_level([*s.body, *s.orelse, *(x for h in getattr(s, "handlers", []) for x in h.body),
                                  *getattr(s, "finalbody", [])])
    return out


@dataclass
class _Class:
    node: ast.ClassDef
    methods: dict[str, ast.AST] = field(default_factory=dict)
    nn_attrs: set[str] = field(default_factory=set)  # self.linear = nn.Linear(...)
    alias_attrs: dict[str, str] = field(default_factory=dict)  # self.act = F.relu
    ref_attrs: dict[str, list[str]] = field(default_factory=dict)  # self.h = Helper(...): names it refers to
    tensor_attrs: set[str] = field(default_factory=lambda: {"weight", "bias"})


class _Facts:
    """Module-wide facts, gathered in one pass over the tree."""

    def __init__(self, tree: ast.Module):
        self.aliases: dict[str, str] = {}  # local name -> dotted path it stands for
        self.functions: dict[str, ast.AST] = {}  # module-level non-jit functions (and lambdas bound to names)
        self.refs: dict[str, list[str]] = {}  # `ln = LayerNorm.apply`: module-level names referring to local code
        self.jit: set[str] = set()
        self.jit_nodes: set[int] = set()
        self.classes: dict[str, _Class] = {}
        for node in ast.walk(tree):  # imports anywhere bind names (function-level imports included)
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                self.aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "triton.jit" in (
                    self.resolve(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list):
                self.jit_nodes.add(id(node))
        for stmt in _module_level(tree.body):
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                if id(stmt) in self.jit_nodes:
                    self.jit.add(stmt.name)
                else:
                    self.functions[stmt.name] = stmt
            elif isinstance(stmt, ast.ClassDef):
                self._add_class(stmt)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name, value = stmt.targets[0].id, stmt.value
                if isinstance(value, ast.Lambda):
                    self.functions[name] = value
                elif isinstance(value, ast.Name) and value.id in self.jit:
                    self.jit.add(name)
                elif (path := self.alias(value)) is not None:
                    self.aliases[name] = path  # `_act = torch.nn.functional.relu` is still torch.nn.functional.relu
                else:
                    self.refs[name] = [n for n in _names(value) if n != name]

    def resolve(self, node: ast.AST, cls: _Class | None = None, local: dict[str, str] | None = None) -> str | None:
        """Dotted path an expression stands for, seeing through import aliases, module-level and `self.attr` aliases,
        `getattr(obj, "lit")`, `__import__("lit")` and `importlib.import_module("lit")`."""
        if isinstance(node, ast.Name):
            return (local or {}).get(node.id) or self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            if cls is not None and (a := _self_attr(node)) in cls.alias_attrs:
                return cls.alias_attrs[a]
            base = self.resolve(node.value, cls, local)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):
            fname = node.func.id if isinstance(node.func, ast.Name) else self.resolve(node.func, cls, local)
            if fname in ("__import__", "importlib.import_module") and _lit(node, 0):
                return _lit(node, 0)
            if fname == "getattr" and _lit(node, 1):  # getattr(obj, "name") is obj.name
                return self.resolve(ast.Attribute(node.args[0], _lit(node, 1), ast.Load()), cls, local)
        return None

    def alias(self, value: ast.AST, cls: _Class | None = None) -> str | None:
        """What a binding stands for: its dotted path, or a PyTorch op wrapped inside it (partial(F.relu), [torch.relu],
        staticmethod(torch.relu)), so that calling the binding counts as calling the op."""
        if (path := self.resolve(value, cls)) is not None:
            return path
        for n in ast.walk(value):
            if isinstance(n, ast.Name | ast.Attribute) and (p := self.resolve(n, cls)) and not _torch_ok(p, False):
                return p
        return None

    def _add_class(self, node: ast.ClassDef) -> None:
        c = _Class(node)
        for base in node.bases:  # inherit what local bases know (the child's definitions override)
            if isinstance(base, ast.Name) and (b := self.classes.get(base.id)):
                c.methods.update(b.methods)
                c.alias_attrs.update(b.alias_attrs)
                c.ref_attrs.update(b.ref_attrs)
                c.nn_attrs |= b.nn_attrs
                c.tensor_attrs |= b.tensor_attrs
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                c.methods[stmt.name] = stmt
            elif isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                if isinstance(stmt.value, ast.Lambda):
                    c.methods[stmt.targets[0].id] = stmt.value
                elif (path := self.alias(stmt.value)) is not None:
                    c.alias_attrs[stmt.targets[0].id] = path  # class-level `act = staticmethod(F.relu)`
        for n in ast.walk(node):  # self.X = ... / setattr(self, "X", ...) / register_* anywhere in the class
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if (attr := _self_attr(t)) is not None:
                        self._classify_attr(c, attr, n.value)
            elif isinstance(n, ast.Call) and _dotted(n.func) == "setattr" and len(n.args) == 3 \
                    and _dotted(n.args[0]) == "self" and _lit(n, 1):
                self._classify_attr(c, _lit(n, 1), n.args[2])
            elif isinstance(n, ast.Call) and _lit(n, 0) and _dotted(n.func) in (
                    "self.register_buffer", "self.register_parameter", "self.add_module"):
                (c.nn_attrs if n.func.attr == "add_module" else c.tensor_attrs).add(_lit(n, 0))
        self.classes[node.name] = c

    def _classify_attr(self, c: _Class, attr: str, value: ast.AST) -> None:
        path = self.resolve(value.func) if isinstance(value, ast.Call) else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in self.classes:
            c.ref_attrs[attr] = [value.func.id]
        elif path and path.startswith("torch.nn.") and path.split(".")[-1][:1].isupper() \
                and path.split(".")[-1] not in ("Parameter", "ParameterList", "ParameterDict"):
            c.nn_attrs.add(attr)
        elif path and path.startswith("torch."):
            c.tensor_attrs.add(attr)  # nn.Parameter(...), torch.randn(...), ...
        elif (path := self.alias(value, c)) is not None:
            c.alias_attrs[attr] = path  # F.relu, functools.partial(F.softmax, dim=-1)
        elif _self_attr(value) in c.nn_attrs:
            c.nn_attrs.add(attr)
        else:  # self.fn = LayerNorm.apply / self.fn = helper
            c.ref_attrs[attr] = _names(value)
