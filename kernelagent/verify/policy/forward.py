"""The forward path: a by-name call graph from the entry point, and a guess of which names hold tensors."""

from __future__ import annotations

import ast

from kernelagent.verify.policy.allowlist import nn_setting
from kernelagent.verify.policy.facts import _Class, _dotted, _Facts, _self_attr
from kernelagent.verify.policy.vocabulary import (
    _BUILTIN_COMPUTE,
    _BUILTIN_PASSTHROUGH,
    _META_ATTRS,
    _NON_TENSOR_RESULT,
    _TORCH_NON_TENSOR,
    _tensor_compute_methods,
)


class _Forward:
    """The entry point's call graph (by name), plus a flow-insensitive guess of which names hold tensors."""

    def __init__(self, facts: _Facts, entry: list[tuple[ast.AST, _Class | None, str]]):
        self.f = facts
        self.fns: dict[int, tuple[ast.AST, _Class | None, str]] = {}  # id(fn) -> (fn, class, qualname)
        self.edges: dict[int, set[int]] = {}  # call edges, for "does this function (transitively) launch"
        self.T: dict[int, set[str]] = {}  # names holding tensors (or containers of tensors)
        self.C: dict[int, set[str]] = {}  # ...of which containers (lists/tuples of tensors: iterating them is fine)
        self.N: dict[int, set[str]] = {}  # names bound to nn layers (lin = self.linear)
        self.L: dict[int, dict[str, str]] = {}  # local aliases (m = torch.nn.functional)
        self.R: set[int] = set()  # functions returning a tensor
        self.G: set[str] = set()  # `global` names that received a tensor
        self.by_method: dict[str, list[tuple[ast.AST, _Class]]] = {}
        for c in facts.classes.values():
            for m, fn in c.methods.items():
                self.by_method.setdefault(m, []).append((fn, c))
        for fn, cls, _ in entry:  # forward(self, x, ...) / kernel_function(x, ...): the inputs are tensors
            params = (fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs)[1 if cls else 0:]
            self.T[id(fn)] = {a.arg for a in params if _dotted(a.annotation) not in ("int", "float", "bool", "str")}
        work = list(entry)
        while work:
            fn, cls, name = work.pop()
            if (k := id(fn)) in self.fns:
                continue
            self.fns[k] = (fn, cls, name)
            self.T.setdefault(k, set()).update(
                a.arg for a in fn.args.args if a.annotation and facts.resolve(a.annotation) == "torch.Tensor")
            self.C[k], self.N[k], self.L[k], self.edges[k] = set(), set(), {}, set()
            for n in self.nodes(fn):
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                    if (path := facts.resolve(n.value, cls)) is not None:
                        self.L[k][n.targets[0].id] = path
                if isinstance(n, ast.Name | ast.Attribute):  # any reference: functions can be passed around
                    work += [t[:3] for t in self.targets(n, k, False)]
                if isinstance(n, ast.Call):
                    callees = self.targets(n.func, k, True)
                    work += [t[:3] for t in callees]
                    self.edges[k].update(id(t[0]) for t in callees)
        size = None
        while size != (size := self._size()):  # propagate tensor-ness to a fixed point (small graphs)
            for k in list(self.fns):
                self._propagate(k)

    def _size(self) -> tuple[int, ...]:
        return (*(sum(map(len, d.values())) for d in (self.T, self.C, self.N)), len(self.R), len(self.G),
                sum(len(c.tensor_attrs) for c in self.f.classes.values()))

    def nodes(self, fn: ast.AST):
        """Every node of a function, default values included, not descending into nested @triton.jit bodies."""
        stack = [*(fn.body if isinstance(fn.body, list) else [fn.body]), *fn.args.defaults,
                 *(d for d in fn.args.kw_defaults if d is not None)]
        while stack:
            n = stack.pop()
            yield n
            if id(n) not in self.f.jit_nodes:
                stack.extend(ast.iter_child_nodes(n))

    def targets(self, e: ast.AST, k: int, called: bool, depth: int = 0) -> list[tuple[ast.AST, _Class | None, str, bool]]:
        """Local functions/methods an expression may run: (fn, class, qualname, bound)."""
        cls = self.fns[k][1]
        via = lambda names: [t for n in names for t in self.targets(ast.Name(n), k, False, depth + 1)]  # noqa: E731
        if isinstance(e, ast.Name):
            if e.id in self.f.functions:
                return [(self.f.functions[e.id], None, e.id, False)]
            if e.id in self.f.classes:  # instantiating runs __init__; any other method may be called later
                c = self.f.classes[e.id]
                return [(fn, c, f"{e.id}.{m}", True) for m, fn in c.methods.items() if called or m != "__init__"]
            return via(self.f.refs[e.id]) if e.id in self.f.refs and depth < 3 else []
        if isinstance(e, ast.Attribute):
            if cls is not None and (a := _self_attr(e)) is not None:
                if a in cls.methods:
                    return [(cls.methods[a], cls, f"{cls.node.name}.{a}", True)]
                if a in cls.ref_attrs and depth < 3:
                    return via(cls.ref_attrs[a])
            if e.attr != "__init__":  # obj.m(...): any local method of that name
                return [(fn, c, f"{c.node.name}.{e.attr}", True) for fn, c in self.by_method.get(e.attr, [])]
        return []

    def resolve(self, e: ast.AST, k: int) -> str | None:
        return self.f.resolve(e, self.fns[k][1], self.L[k])

    def is_nn(self, e: ast.AST, k: int) -> bool:
        """`self.linear`, `self.layers[0]`, or a name bound to one."""
        while isinstance(e, ast.Subscript):
            e = e.value
        cls = self.fns[k][1]
        return e.id in self.N[k] if isinstance(e, ast.Name) else cls is not None and _self_attr(e) in cls.nn_attrs

    def t(self, e: ast.AST | None, k: int) -> bool:
        """Does this expression (probably) evaluate to a tensor, or to a container of tensors?"""
        cls, t = self.fns[k][1], lambda x: self.t(x, k)
        if isinstance(e, ast.Name):
            return e.id in self.T[k] or e.id in self.G
        if isinstance(e, ast.Attribute):
            if (a := _self_attr(e)) is not None:
                return cls is not None and a in cls.tensor_attrs
            if self.is_nn(e.value, k):  # self.linear.weight is a tensor; self.gn.num_groups is an int setting
                return not nn_setting(e.attr)
            return e.attr not in _META_ATTRS and t(e.value)  # x.T
        if isinstance(e, ast.Subscript | ast.Starred | ast.NamedExpr):
            return t(e.value)
        if isinstance(e, ast.BinOp):
            return t(e.left) or t(e.right)
        if isinstance(e, ast.UnaryOp):
            return t(e.operand)
        if isinstance(e, ast.BoolOp | ast.Dict):
            return any(map(t, e.values))
        if isinstance(e, ast.List | ast.Tuple | ast.Set):
            return any(map(t, e.elts))
        if isinstance(e, ast.Compare):  # `x > 0` is a tensor; `x is None`, `k in d` are not
            return not all(isinstance(op, ast.Is | ast.IsNot | ast.In | ast.NotIn) for op in e.ops) and (
                t(e.left) or any(map(t, e.comparators)))
        if isinstance(e, ast.IfExp):
            return t(e.body) or t(e.orelse)
        if isinstance(e, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            return t(e.elt)
        return isinstance(e, ast.Call) and self._call_t(e, k)

    def _call_t(self, e: ast.Call, k: int) -> bool:
        f, any_arg = e.func, any(self.t(a, k) for a in [*e.args, *(kw.value for kw in e.keywords)])
        if self.is_nn(f, k):
            return True
        if isinstance(f, ast.Subscript):
            return False  # kernel[grid](...) returns no tensor
        if (path := self.resolve(f, k)) is not None:
            return path.startswith("torch.") and not path.startswith(("torch.cuda.", "torch.version.")) \
                and path.split(".")[-1] not in _TORCH_NON_TENSOR  # device properties are facts
        if isinstance(f, ast.Name):
            if f.id in self.f.functions:
                return id(self.f.functions[f.id]) in self.R
            return (f.id in self.f.classes or f.id in _BUILTIN_PASSTHROUGH | _BUILTIN_COMPUTE) and any_arg
        if isinstance(f, ast.Attribute):
            if f.attr in _NON_TENSOR_RESULT:
                return False
            if (local := self.targets(f, k, True)) and not self.t(f.value, k):
                return any(id(t[0]) in self.R for t in local)
            return self.t(f.value, k) or f.attr in _tensor_compute_methods()
        return any_arg

    def container(self, e: ast.AST, k: int) -> bool:
        if isinstance(e, ast.Name):
            return e.id in self.C[k]
        if isinstance(e, ast.Call):
            return (isinstance(e.func, ast.Attribute) and e.func.attr in ("split", "chunk", "unbind", "tensor_split")) \
                or _dotted(e.func) in _BUILTIN_PASSTHROUGH
        return isinstance(e, ast.List | ast.Tuple | ast.Set | ast.Dict | ast.ListComp | ast.GeneratorExp)

    def _bind(self, target: ast.AST, k: int, container: bool) -> None:
        fn, cls, _ = self.fns[k]
        if isinstance(target, ast.Name):
            self.T[k].add(target.id)
            if container:
                self.C[k].add(target.id)
            if any(isinstance(n, ast.Global) and target.id in n.names for n in self.nodes(fn)):
                self.G.add(target.id)
        elif isinstance(target, ast.Tuple | ast.List):
            for elt in target.elts:
                self._bind(elt, k, isinstance(elt, ast.Starred))
        elif (a := _self_attr(target)) is not None:
            if cls is not None:
                cls.tensor_attrs.add(a)
        elif isinstance(target, ast.Attribute | ast.Subscript | ast.Starred):
            self._bind(target.value, k, True)  # d["x"] = t / box.v = t: the container now holds a tensor

    def _propagate(self, k: int) -> None:
        fn = self.fns[k][0]
        for n in self.nodes(fn):
            if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and self.t(n.value, k):
                for tgt in getattr(n, "targets", None) or [n.target]:
                    self._bind(tgt, k, self.container(n.value, k))
            elif isinstance(n, ast.Assign) and self.is_nn(n.value, k):
                self.N[k].update(t.id for t in n.targets if isinstance(t, ast.Name))
            elif isinstance(n, ast.For | ast.AsyncFor | ast.comprehension):
                if self.is_nn(n.iter, k) and isinstance(n.target, ast.Name):
                    self.N[k].add(n.target.id)  # for layer in self.layers
                elif self.t(n.iter, k):  # for i, t in enumerate(ts): only t is a tensor
                    enum = _dotted(getattr(n.iter, "func", None)) == "enumerate" and isinstance(n.target, ast.Tuple)
                    self._bind(n.target.elts[-1] if enum else n.target, k, False)
            elif isinstance(n, ast.withitem) and n.optional_vars is not None and self.t(n.context_expr, k):
                self._bind(n.optional_vars, k, False)
            elif isinstance(n, ast.Return) and self.t(n.value, k):
                self.R.add(k)
            elif isinstance(n, ast.Call):
                if isinstance(n.func, ast.Attribute) and n.func.attr in (
                        "append", "extend", "insert", "add", "update", "setdefault", "appendleft") \
                        and any(self.t(a, k) for a in n.args):
                    self._bind(n.func.value, k, True)
                for callee, _, _, bound in self.targets(n.func, k, True):
                    self._seed(n, k, callee, bound)
        if isinstance(fn, ast.Lambda) and self.t(fn.body, k):
            self.R.add(k)

    def _seed(self, call: ast.Call, k: int, fn: ast.AST, bound: bool) -> None:
        """Interprocedural: a parameter that receives a tensor at some call site holds a tensor."""
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args][1 if bound else 0:]
        names = self.T.setdefault(id(fn), set())
        for i, a in enumerate(call.args):
            if self.t(a, k):
                if isinstance(a, ast.Starred):
                    names.update(params)
                elif i < len(params) or fn.args.vararg is not None:
                    names.add(params[i] if i < len(params) else fn.args.vararg.arg)
        for kw in call.keywords:
            if self.t(kw.value, k):
                names.update([kw.arg] if kw.arg else params + [a.arg for a in fn.args.kwonlyargs])

    def launches(self) -> set[int]:
        """Functions that launch a kernel (kernel[grid](...)), directly or through their callees."""
        out = {k for k, (fn, _, _) in self.fns.items() if any(_is_launch(n, self.f) for n in self.nodes(fn))}
        while grown := {k for k, callees in self.edges.items() if k not in out and callees & out}:
            out |= grown
        return out


def _is_launch(n: ast.AST, facts: _Facts) -> bool:
    return isinstance(n, ast.Call) and (isinstance(n.func, ast.Subscript) or (
        isinstance(n.func, ast.Attribute) and n.func.attr in ("run", "warmup") and _dotted(n.func.value) in facts.jit))
