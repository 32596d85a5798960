"""Static (AST) anti-cheat policy for LLM-written Triton candidates.

A candidate must do its math inside ``@triton.jit`` kernels; the Python wrapper may only allocate, reshape and launch.
One pass collects facts (import aliases, functions, classes and their nn-layer/tensor attributes); a by-name call graph
is built from the entry point (``ModelNew.forward`` or ``kernel_function``); a flow-insensitive guess of which names
hold tensors separates tensor operators from shape arithmetic; then small rule functions report violations.
The policy flags what it can see and never runs the candidate.  Tensors reaching Python operators through routes it
does not model (lambda / nested-def parameters, exception payloads) and torch calls inside @triton.jit bodies (plain
Python under TRITON_INTERPRET=1) are left to the runtime torch-op guard; tests/corpus has one candidate for each.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field


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
}


def _w(words: str) -> frozenset[str]:
    return frozenset(words.split())


_ALLOWED_MODULES = _w("torch torch.nn torch.nn.functional triton triton.language math typing functools dataclasses "
                      "itertools collections collections.abc numbers enum __future__")
# `from torch import X` / `from triton import X` of these reopens what the allowlist closes
_FORBIDDEN_FROM = _w("utils library hub ops multiprocessing distributed testing backends jit fx compiler overrides "
                     "serialization package onnx runtime tools knobs")
# torch.<name>(...) allowed on the forward path: allocation, views/layout, metadata.  Everything else is compute.
_TORCH_CALLS = _w("empty empty_like empty_strided zeros zeros_like ones ones_like full full_like arange tensor "
                  "as_tensor reshape flatten transpose permute t unsqueeze squeeze narrow split chunk unbind movedim "
                  "as_strided broadcast_to broadcast_tensors broadcast_shapes device Size is_tensor is_floating_point "
                  "is_complex numel get_default_dtype finfo iinfo no_grad inference_mode promote_types")
_TORCH_NON_TENSOR = _w("device Size is_tensor is_floating_point is_complex numel get_default_dtype finfo iinfo "
                       "promote_types no_grad inference_mode broadcast_shapes")
_TORCH_REFS = _w("torch.Tensor torch.Size torch.device torch.dtype torch.nn.Module torch.nn.Parameter torch.strided "
                 "torch.contiguous_format torch.preserve_format torch.channels_last torch.inf torch.nan")
_DTYPE_RE = re.compile(r"^(u?int\d+|float\d+\w*|bfloat16|half|float|double|long|int|short|bool|complex\d+)$")
# Tensor methods that only allocate, view, convert or read metadata; numpy/tolist belong to file_or_process_access
_TENSOR_OK = _w("view view_as reshape reshape_as contiguous transpose permute t expand expand_as unsqueeze squeeze "
                "flatten unflatten as_strided narrow split chunk unbind movedim broadcast_to stride size numel "
                "nelement dim ndimension is_contiguous to type type_as float half bfloat16 double long int bool clone "
                "detach data_ptr element_size item cpu cuda storage_offset get_device is_floating_point is_complex "
                "new_empty new_zeros new_ones new_full new_empty_strided zero_ fill_ copy_ requires_grad_ "
                "untyped_storage dim_order index values numpy tolist")
_NON_TENSOR_RESULT = _w("numel nelement size stride dim ndimension item data_ptr element_size is_contiguous tolist "
                        "storage_offset get_device is_floating_point is_complex")
_META_ATTRS = _w("shape dtype device ndim is_cuda is_cpu layout requires_grad is_leaf itemsize nbytes grad_fn names")
_OP_DUNDER = re.compile(r"^__r?i?(add|sub|mul|matmul|truediv|floordiv|div|mod|pow|neg|pos|abs|invert|and|or|xor|"
                        r"lshift|rshift|lt|le|gt|ge|eq|ne|array)__$")
_BUILTIN_COMPUTE = _w("sum max min abs pow round divmod sorted any all")
_BUILTIN_PASSTHROUGH = _w("list tuple iter next reversed zip enumerate map filter dict set")
_NN_CALLS = _w("forward __call__ _call_impl _wrapped_call_impl")
_PROCESS_ROOTS = _w("os sys subprocess socket shutil pathlib io ctypes pickle builtins importlib tempfile glob "
                    "threading multiprocessing signal inspect gc")
_PROCESS_ATTRS = _w("os sys subprocess builtins importlib ctypes system popen _os _sys")
_ENV_NAMES = _w("environ environb getenv getenvb putenv unsetenv __builtins__")
_INTROSPECT_NAMES = _w(
    "__dict__ __class__ __subclasses__ __globals__ __code__ __builtins__ __import__ __closure__ __bases__ __base__ "
    "__mro__ __getattribute__ __setattr__ __delattr__ __loader__ __spec__ __self__ __func__ __wrapped__ __defaults__ "
    "__kwdefaults__ __torch_function__ __torch_dispatch__ __traceback__ tb_frame tb_next f_back f_locals f_globals "
    "f_code gi_frame cr_frame _getframe TorchDispatchMode TorchFunctionMode _python_dispatch "
    # hooks run code around forward without appearing on its path
    "register_forward_hook register_forward_pre_hook register_module_forward_hook register_module_forward_pre_hook "
    "register_full_backward_hook register_backward_hook")
# dispatch interception, and global RNG/default state (re-seeding makes the verifier's "fresh" inputs predictable)
_INTROSPECT_PATHS = ("torch.utils._python_dispatch", "torch.overrides", "torch.library", "torch._C._set", "sys.modules",
                     "torch._dynamo", "torch.fx", "torch.manual_seed", "torch.seed", "torch.set_rng_state",
                     "torch.random", "torch.set_default_", "torch.cuda.manual_seed", "torch.cuda.set_rng_state",
                     "torch.set_flush_denormal", "torch.use_deterministic_algorithms")
_FILE_PATHS = ("torch.load", "torch.save", "torch.from_numpy", "torch.hub", "torch.utils.cpp_extension",
               "torch.ops.load_library")
_EXITS = _w("sys.exit os._exit os.kill os.killpg os.abort exit quit")
# What may run at import time (module/class bodies, decorators, default values)
_DECORATORS = _w("triton.jit triton.autotune triton.heuristics functools.lru_cache functools.cache functools.wraps "
                 "dataclasses.dataclass torch.no_grad torch.inference_mode typing.final typing.overload staticmethod "
                 "classmethod property")
_IMPORT_TIME_CALLS = _DECORATORS | _w(
    "triton.Config triton.cdiv triton.next_power_of_2 triton.runtime.driver.active.get_active_torch_device "
    "torch.device torch.finfo torch.iinfo dataclasses.field enum.auto int float range tuple list dict set frozenset")
_FIX = "do this math inside a @triton.jit kernel (PyTorch may only allocate outputs and make views)"
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
        ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}


@functools.lru_cache(maxsize=1)
def _tensor_compute_methods() -> frozenset[str]:
    """Callable Tensor methods minus the allowlist, plus operator dunders (x.__add__(y) is x + y)."""
    try:
        import torch  # noqa: PLC0415 - lazy: the list follows the installed torch
        names = {n for n in dir(torch.Tensor) if (not n.startswith("__") and callable(getattr(torch.Tensor, n, None)))
                 or _OP_DUNDER.match(n)}
    except ImportError:  # pragma: no cover - torch is a hard dependency; keep a floor anyway
        names = set("sum mean exp matmul mm bmm softmax relu add mul cumsum max sort topk clamp add_ mul_ clamp_ "
                    "where abs __add__ __mul__ __matmul__".split())
    return frozenset(names - _TENSOR_OK)


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
    return not is_call and (path in _TORCH_REFS or (len(parts) == 2 and bool(_DTYPE_RE.match(parts[1]))))


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
        for stmt in tree.body:
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
            return e.attr not in _META_ATTRS and (self.is_nn(e.value, k) or t(e.value))  # self.linear.weight, x.T
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
            return path.startswith("torch.") and path.split(".")[-1] not in _TORCH_NON_TENSOR
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


def check_policy(source: str, *, entry: str = "ModelNew") -> list[Violation]:
    """All policy violations in a candidate's source, sorted by line. Raises SyntaxError for unparsable source."""
    tree = ast.parse(source)
    f = _Facts(tree)
    out: dict[tuple[str, int, str], Violation] = {}

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
                if m not in _ALLOWED_MODULES and not m.startswith("triton.language."):
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


def _trusted_path(e: ast.AST, f: _Facts) -> str | None:
    """Dotted path of a callable run at import time; None for candidate-defined code (a local `def int(...)`)."""
    if isinstance(e, ast.Name) and (e.id in f.functions or e.id in f.classes):
        return None
    return f.resolve(e) or _dotted(e)


def _simple(e: ast.AST, f: _Facts) -> bool:
    """Can this expression be evaluated at import time without running candidate code (literals, names, Configs)?"""
    if isinstance(e, ast.Call):
        path = _trusted_path(e.func, f)
        ok = path in _IMPORT_TIME_CALLS or (path or "").startswith(("triton.language.", "math.", "typing."))
        return ok and all(_simple(a, f) for a in [*e.args, *(kw.value for kw in e.keywords)])
    if isinstance(e, ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr):
        return False
    return isinstance(e, ast.Lambda) or all(_simple(c, f) for c in ast.iter_child_nodes(e))  # lambdas run later


def _import_time_code(stmts: list[ast.stmt], f: _Facts) -> list[ast.stmt]:
    """Module/class-body statements that do more than import, define, or bind simple values."""
    bad: list[ast.stmt] = []
    for s in stmts:
        if isinstance(s, ast.Import | ast.ImportFrom | ast.Pass) or (
                isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)):
            continue  # imports, docstrings
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
