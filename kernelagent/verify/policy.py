"""Static (AST) anti-cheat policy for LLM-written Triton candidates.

A candidate must do its math inside ``@triton.jit`` kernels; the Python wrapper may only allocate, reshape and launch.
The policy parses the source once, collects facts (imports/aliases, functions, classes, nn-module attributes), builds
a by-name call graph from the entry point (``ModelNew.forward`` or ``kernel_function``), infers which names hold
tensors, and then runs small rule functions.  It is deliberately conservative: it flags what it *can see*; tensors that
reach Python operators through routes it cannot model (lambda/nested-def parameters, exception payloads) are left to
the runtime torch-op guard.  It never imports or executes the candidate.
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
    "missing_entry": "The entry point (class ModelNew / def kernel_function) is missing.",
    "torch_compute_in_forward": "PyTorch compute (torch ops, nn layers, tensor methods/operators) on the forward path.",
    "forbidden_import": "Import of a module outside the allowlist (torch, torch.nn[.functional], triton[.language], small stdlib).",
    "file_or_process_access": "File, process, os/sys, exec/eval or numpy/tolist escape hatches.",
    "environment_access": "Reading environment variables or __builtins__.",
    "introspection": "globals()/getattr tricks, monkeypatching modules, dunder introspection, dispatch modes.",
    "fallback_try_except": "try/except on the forward path that can swallow a failed launch or fall back to PyTorch.",
    "early_exit": "exit()/sys.exit/os._exit/signals anywhere, or module-level code beyond definitions and constants.",
}

_ALLOWED_MODULES = {"torch", "torch.nn", "torch.nn.functional", "triton", "triton.language", "math", "typing",
                    "functools", "dataclasses", "itertools", "collections", "collections.abc", "numbers", "enum",
                    "__future__"}
# `from torch import X` / `from triton import X`: these submodules open doors the allowlist is meant to keep shut.
_FORBIDDEN_FROM = {"utils", "library", "hub", "ops", "multiprocessing", "distributed", "testing", "backends", "jit",
                   "fx", "compiler", "overrides", "serialization", "package", "onnx", "runtime", "tools", "knobs"}
# torch.<name>(...) allowed in the forward path: allocation, views/layout, metadata.  Everything else is compute.
_TORCH_CALLS = {"empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
                "full_like", "arange", "reshape", "flatten", "transpose", "permute", "t", "unsqueeze", "squeeze",
                "narrow", "split", "chunk", "as_strided", "device", "Size", "is_tensor", "is_floating_point",
                "is_complex", "numel", "get_default_dtype", "finfo", "iinfo", "no_grad", "inference_mode",
                "promote_types"}
_TORCH_REFS = {"torch.Tensor", "torch.Size", "torch.device", "torch.dtype", "torch.nn.Module", "torch.nn.Parameter",
               "torch.contiguous_format", "torch.preserve_format", "torch.strided", "torch.inf", "torch.nan"}
_DTYPE_RE = re.compile(r"^(u?int\d+|float\d+\w*|bfloat16|half|float|double|long|int|short|bool|complex\d+)$")
# Tensor methods that only allocate, view, convert or read metadata (the brief's allowlist).
_TENSOR_OK = {"view", "view_as", "reshape", "reshape_as", "contiguous", "transpose", "permute", "t", "expand",
              "expand_as", "unsqueeze", "squeeze", "flatten", "as_strided", "narrow", "split", "chunk", "stride",
              "size", "numel", "nelement", "dim", "ndimension", "is_contiguous", "to", "float", "half", "bfloat16",
              "clone", "detach", "data_ptr", "element_size", "item", "type", "cpu", "cuda", "storage_offset",
              "get_device", "is_floating_point", "is_complex", "new_empty", "new_zeros", "new_ones", "new_full",
              "new_empty_strided", "zero_", "fill_", "copy_", "requires_grad_", "untyped_storage", "dim_order",
              "index", "values", "numpy", "tolist"}  # numpy/tolist are file_or_process_access, not double-flagged
_NON_TENSOR_RESULT = {"numel", "nelement", "size", "stride", "dim", "ndimension", "item", "data_ptr", "element_size",
                      "is_contiguous", "storage_offset", "get_device", "is_floating_point", "is_complex", "tolist"}
_META_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "is_cpu", "layout", "requires_grad", "is_leaf",
               "itemsize", "nbytes", "grad_fn", "names"}
_OP_DUNDER = re.compile(r"^__r?i?(add|sub|mul|matmul|truediv|floordiv|div|mod|pow|neg|pos|abs|invert|and|or|xor|"
                        r"lshift|rshift|lt|le|gt|ge|eq|ne|array)__$")
_BUILTIN_COMPUTE = {"sum", "max", "min", "abs", "pow", "round", "divmod", "sorted", "any", "all"}
_BUILTIN_SCALAR = {"float", "int", "bool", "complex"}
_BUILTIN_PASSTHROUGH = {"list", "tuple", "iter", "next", "reversed", "zip", "enumerate", "map", "filter", "dict", "set"}
_PROCESS_ROOTS = {"os", "sys", "subprocess", "socket", "shutil", "pathlib", "io", "ctypes", "pickle", "builtins",
                  "importlib", "tempfile", "glob", "threading", "multiprocessing", "signal", "inspect", "gc"}
_PROCESS_ATTRS = {"os", "sys", "subprocess", "builtins", "importlib", "ctypes", "system", "popen", "_os", "_sys"}
_ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
_INTROSPECT_ATTRS = {"__dict__", "__class__", "__subclasses__", "__globals__", "__code__", "__builtins__",
                     "__import__", "__closure__", "__bases__", "__base__", "__mro__", "__getattribute__",
                     "__setattr__", "__delattr__", "__loader__", "__spec__", "__self__", "__func__", "__wrapped__",
                     "__defaults__", "__kwdefaults__", "__torch_function__", "__torch_dispatch__", "__traceback__",
                     "tb_frame", "tb_next", "f_back", "f_locals", "f_globals", "f_code", "gi_frame", "cr_frame",
                     "_getframe", "TorchDispatchMode", "TorchFunctionMode", "_python_dispatch",
                     # hooks run code around forward without appearing on its path
                     "register_forward_hook", "register_forward_pre_hook", "register_module_forward_hook",
                     "register_module_forward_pre_hook", "register_full_backward_hook", "register_backward_hook"}
# dispatch interception, plus global RNG/default state (re-seeding makes "fresh" inputs predictable)
_INTROSPECT_PATHS = ("torch.utils._python_dispatch", "torch.overrides", "torch.library", "torch._C._set", "sys.modules",
                     "torch._dynamo", "torch.fx", "torch.manual_seed", "torch.seed", "torch.set_rng_state",
                     "torch.random", "torch.set_default_", "torch.cuda.manual_seed", "torch.cuda.set_rng_state",
                     "torch.set_flush_denormal", "torch.use_deterministic_algorithms")
_EXITS = {"sys.exit", "os._exit", "os.kill", "os.killpg", "os.abort"}


@functools.lru_cache(maxsize=1)
def _tensor_compute_methods() -> frozenset[str]:
    """Callable Tensor methods minus the allowlist, plus the operator dunders (x.__add__(y) is x + y)."""
    try:
        import torch  # noqa: PLC0415 - lazy: the list follows the installed torch
        names = {n for n in dir(torch.Tensor) if not n.startswith("__") and callable(getattr(torch.Tensor, n, None))}
        names |= {n for n in dir(torch.Tensor) if _OP_DUNDER.match(n)}
    except ImportError:  # pragma: no cover - torch is a hard dependency; keep a floor anyway
        names = {"sum", "mean", "exp", "matmul", "mm", "softmax", "relu", "add", "mul", "cumsum", "max", "sort",
                 "topk", "clamp", "add_", "mul_", "clamp_", "where", "abs", "__add__", "__mul__", "__matmul__"}
    return frozenset(names - _TENSOR_OK)


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` -> "a.b.c" for plain Name/Attribute chains."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _lit(call: ast.Call, i: int) -> str | None:
    if len(call.args) > i and isinstance(call.args[i], ast.Constant) and isinstance(call.args[i].value, str):
        return call.args[i].value
    return None


def _is_self_attr(node: ast.AST) -> str | None:
    """`self.X` -> "X"."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


@dataclass
class _Class:
    node: ast.ClassDef
    methods: dict[str, ast.AST] = field(default_factory=dict)
    nn_attrs: set[str] = field(default_factory=set)  # self.X = nn.Linear(...)
    alias_attrs: dict[str, str] = field(default_factory=dict)  # self.act = F.relu
    class_attrs: dict[str, list[str]] = field(default_factory=dict)  # self.h = Helper(...): names it refers to
    tensor_attrs: set[str] = field(default_factory=lambda: {"weight", "bias"})


class _Facts:
    """Everything the rules need, gathered in one pass over the tree."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.aliases: dict[str, str] = {}  # local name -> dotted path it stands for
        self.functions: dict[str, ast.AST] = {}  # module-level non-jit functions (and lambdas bound to names)
        self.jit: set[str] = set()
        self.jit_nodes: set[int] = set()
        self.classes: dict[str, _Class] = {}
        self.refs: dict[str, list[str]] = {}  # `ln = LayerNorm.apply`: module-level names referring to local code
        for node in ast.walk(tree):  # imports anywhere bind names (function-level imports included)
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and self.is_jit(node):
                self.jit_nodes.add(id(node))
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                (self.jit.add(stmt.name) if id(stmt) in self.jit_nodes else self.functions.__setitem__(stmt.name, stmt))
            elif isinstance(stmt, ast.ClassDef):
                self._add_class(stmt)
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                name, value = stmt.targets[0].id, stmt.value
                if isinstance(value, ast.Lambda):
                    self.functions[name] = value
                elif isinstance(value, ast.Name) and value.id in self.functions:
                    self.functions[name] = self.functions[value.id]
                elif isinstance(value, ast.Name) and value.id in self.jit:
                    self.jit.add(name)
                elif (path := self.alias(value)) is not None:
                    self.aliases[name] = path  # `_act = torch.nn.functional.relu` is still torch.nn.functional.relu
                else:
                    self.refs[name] = [n.id for n in ast.walk(value) if isinstance(n, ast.Name) and n.id != name]

    def alias(self, value: ast.AST, cls: _Class | None = None) -> str | None:
        """What a binding stands for: its dotted path, or a PyTorch op wrapped inside it (partial(F.relu), [torch.relu],
        staticmethod(torch.relu)), so calling the binding counts as calling the op."""
        if (path := self.resolve(value, cls)) is not None:
            return path
        for n in ast.walk(value):
            if isinstance(n, ast.Name | ast.Attribute) and (p := self.resolve(n, cls)) and not _torch_ok(p, False):
                return p
        return None

    def resolve(self, node: ast.AST, cls: _Class | None = None, local: dict[str, str] | None = None) -> str | None:
        """Dotted path an expression stands for, seeing through import aliases, module-level aliases,
        `self.attr` aliases, `getattr(mod, "lit")`, `__import__("lit")` and `importlib.import_module("lit")`."""
        if isinstance(node, ast.Name):
            return (local or {}).get(node.id) or self.aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            if cls is not None and (a := _is_self_attr(node)) in cls.alias_attrs:
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

    def is_jit(self, fn: ast.AST) -> bool:
        decs = [self.resolve(d.func if isinstance(d, ast.Call) else d) for d in getattr(fn, "decorator_list", [])]
        return "triton.jit" in decs

    def _add_class(self, node: ast.ClassDef) -> None:
        c = _Class(node)
        for base in node.bases:  # inherit what local bases know (child definitions override)
            if isinstance(base, ast.Name) and base.id in self.classes:
                b = self.classes[base.id]
                c.methods.update(b.methods)
                c.nn_attrs |= b.nn_attrs
                c.alias_attrs.update(b.alias_attrs)
                c.class_attrs.update(b.class_attrs)
                c.tensor_attrs |= b.tensor_attrs
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                c.methods[stmt.name] = stmt
            elif isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
                if isinstance(stmt.value, ast.Lambda):
                    c.methods[stmt.targets[0].id] = stmt.value
                elif (path := self.alias(stmt.value)) is not None:
                    c.alias_attrs[stmt.targets[0].id] = path  # class-level `act = F.relu`
        for n in ast.walk(node):  # self.X = ... / setattr(self, "X", ...) / register_* anywhere in the class
            if isinstance(n, ast.Assign):
                for t in n.targets:
                    if (attr := _is_self_attr(t)) is not None:
                        self._classify_attr(c, attr, n.value)
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setattr" \
                    and len(n.args) == 3 and isinstance(n.args[0], ast.Name) and n.args[0].id == "self" and _lit(n, 1):
                self._classify_attr(c, _lit(n, 1), n.args[2])
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and _lit(n, 0) \
                    and isinstance(n.func.value, ast.Name) and n.func.value.id == "self":
                if n.func.attr in ("register_buffer", "register_parameter"):
                    c.tensor_attrs.add(_lit(n, 0))
                elif n.func.attr == "add_module":
                    c.nn_attrs.add(_lit(n, 0))
        self.classes[node.name] = c

    def _classify_attr(self, c: _Class, attr: str, value: ast.AST) -> None:
        if isinstance(value, ast.Call):
            path = self.resolve(value.func)
            if isinstance(value.func, ast.Name) and value.func.id in self.classes:
                c.class_attrs[attr] = [value.func.id]
            elif path and path.startswith("torch.nn.") and path.split(".")[-1][:1].isupper() \
                    and path.split(".")[-1] not in ("Parameter", "ParameterList", "ParameterDict"):
                c.nn_attrs.add(attr)
            elif path and path.startswith("torch."):
                c.tensor_attrs.add(attr)  # nn.Parameter(...), torch.randn(...), ...
            elif (path := self.alias(value, c)) is not None:
                c.alias_attrs[attr] = path  # functools.partial(F.softmax, dim=-1)
        elif (path := self.alias(value, c)) is not None:
            c.alias_attrs[attr] = path
        elif _is_self_attr(value) in c.nn_attrs:
            c.nn_attrs.add(attr)
        else:  # self.fn = LayerNorm.apply / self.fn = helper
            c.class_attrs[attr] = [n.id for n in ast.walk(value) if isinstance(n, ast.Name)]


class _Forward:
    """The entry point's call graph (by name) plus a flow-insensitive guess of which names hold tensors."""

    def __init__(self, facts: _Facts, entry: list[tuple[ast.AST, _Class | None, str]]):
        self.f = facts
        self.fns: dict[int, tuple[ast.AST, _Class | None, str]] = {}
        self.edges: dict[int, set[int]] = {}  # call edges, for "does this function (transitively) launch"
        self.T: dict[int, set[str]] = {}  # names holding tensors (or containers of tensors)
        self.C: dict[int, set[str]] = {}  # ...of which containers (list/tuple of tensors: iterating them is fine)
        self.N: dict[int, set[str]] = {}  # names bound to nn layers (lin = self.linear)
        self.L: dict[int, dict[str, str]] = {}  # local aliases (m = torch.nn.functional)
        self.R: set[int] = set()  # functions returning a tensor
        self.G: set[str] = set()  # `global` names that received a tensor
        self.by_method: dict[str, list[tuple[ast.AST, _Class]]] = {}
        for c in facts.classes.values():
            for m, fn in c.methods.items():
                self.by_method.setdefault(m, []).append((fn, c))
        work = list(entry)
        for fn, cls, _ in entry:  # forward(self, x, ...) / kernel_function(x, ...): parameters are tensors
            params = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
            self.T[id(fn)] = {a.arg for a in params[1 if cls else 0:] if not _scalar_annotation(a)}
        while work:
            fn, cls, name = work.pop()
            if id(fn) in self.fns:
                continue
            k = id(fn)
            self.fns[k] = (fn, cls, name)
            self.T.setdefault(k, set()).update(
                a.arg for a in fn.args.args if a.annotation and facts.resolve(a.annotation) == "torch.Tensor")
            self.C[k], self.N[k], self.L[k], self.edges[k] = set(), set(), {}, set()
            for n in self.nodes(fn):
                if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                    if (path := facts.resolve(n.value, cls)) is not None:
                        self.L[k][n.targets[0].id] = path
                if isinstance(n, ast.Name | ast.Attribute):  # any reference: functions can be passed around
                    for tfn, tcls, tname, _ in self.targets(n, k, False):
                        work.append((tfn, tcls, tname))
                if isinstance(n, ast.Call):
                    for tfn, tcls, tname, _ in self.targets(n.func, k, True):
                        work.append((tfn, tcls, tname))
                        self.edges[k].add(id(tfn))
        for _ in range(12):  # propagate tensor-ness until nothing changes (small graphs: converges fast)
            before = (sum(map(len, self.T.values())), sum(map(len, self.C.values())), len(self.R), len(self.G),
                      sum(len(c.tensor_attrs) for c in facts.classes.values()), sum(map(len, self.N.values())))
            for k in list(self.fns):
                self._propagate(k)
            after = (sum(map(len, self.T.values())), sum(map(len, self.C.values())), len(self.R), len(self.G),
                     sum(len(c.tensor_attrs) for c in facts.classes.values()), sum(map(len, self.N.values())))
            if before == after:
                break

    def nodes(self, fn: ast.AST):
        """Every node of a function, default values included, without descending into nested @triton.jit bodies."""
        stack = list(fn.body) if isinstance(fn.body, list) else [fn.body]
        stack += fn.args.defaults + [d for d in fn.args.kw_defaults if d is not None]
        while stack:
            n = stack.pop()
            yield n
            if id(n) not in self.f.jit_nodes:
                stack.extend(ast.iter_child_nodes(n))

    def targets(self, e: ast.AST, k: int, called: bool, depth: int = 0):
        """Local functions/methods an expression refers to: (fn, cls, qualname, bound)."""
        cls = self.fns[k][1] if k in self.fns else None
        if isinstance(e, ast.Name):
            if e.id in self.f.functions:
                return [(self.f.functions[e.id], None, e.id, False)]
            if e.id in self.f.classes:  # instantiating runs __init__; any other method may be called later
                c = self.f.classes[e.id]
                return [(fn, c, f"{e.id}.{m}", True) for m, fn in c.methods.items() if called or m != "__init__"]
            if e.id in self.f.refs and depth < 3:
                return [t for n in self.f.refs[e.id] for t in self.targets(ast.Name(n), k, False, depth + 1)]
            return []
        if isinstance(e, ast.Attribute):
            if cls is not None and (a := _is_self_attr(e)) is not None:
                if a in cls.methods:
                    return [(cls.methods[a], cls, f"{cls.node.name}.{a}", True)]
                if a in cls.class_attrs and depth < 3:
                    return [t for n in cls.class_attrs[a] for t in self.targets(ast.Name(n), k, False, depth + 1)]
            if e.attr != "__init__":
                return [(fn, c, f"{c.node.name}.{e.attr}", True) for fn, c in self.by_method.get(e.attr, [])]
        return []

    def resolve(self, e: ast.AST, k: int) -> str | None:
        return self.f.resolve(e, self.fns[k][1], self.L[k])

    def is_nn(self, e: ast.AST, k: int) -> bool:
        """`self.linear`, `self.layers[0]`, or a name bound to one."""
        cls = self.fns[k][1]
        while isinstance(e, ast.Subscript):
            e = e.value
        if isinstance(e, ast.Name):
            return e.id in self.N[k]
        return cls is not None and _is_self_attr(e) in cls.nn_attrs

    def t(self, e: ast.AST | None, k: int) -> bool:
        """Does this expression (probably) evaluate to a tensor, or a container of tensors?"""
        cls = self.fns[k][1]
        if e is None:
            return False
        if isinstance(e, ast.Name):
            return e.id in self.T[k] or e.id in self.G
        if isinstance(e, ast.Attribute):
            if (a := _is_self_attr(e)) is not None:
                return cls is not None and a in cls.tensor_attrs
            if e.attr in _META_ATTRS:
                return False
            return self.is_nn(e.value, k) or self.t(e.value, k)  # self.linear.weight, x.T
        if isinstance(e, ast.Subscript | ast.Starred | ast.NamedExpr | ast.keyword):
            return self.t(e.value, k)
        if isinstance(e, ast.BinOp):
            return self.t(e.left, k) or self.t(e.right, k)
        if isinstance(e, ast.UnaryOp):
            return self.t(e.operand, k)
        if isinstance(e, ast.BoolOp | ast.List | ast.Tuple | ast.Set):
            return any(self.t(v, k) for v in getattr(e, "values", None) or e.elts)
        if isinstance(e, ast.Dict):
            return any(self.t(v, k) for v in e.values)
        if isinstance(e, ast.Compare):
            return _computing_compare(e) and any(self.t(v, k) for v in [e.left, *e.comparators])
        if isinstance(e, ast.IfExp):
            return self.t(e.body, k) or self.t(e.orelse, k)
        if isinstance(e, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            return self.t(e.elt, k)
        if isinstance(e, ast.Call):
            return self._call_t(e, k)
        return False

    def _call_t(self, e: ast.Call, k: int) -> bool:
        args = [*e.args, *e.keywords]
        if isinstance(e.func, ast.Subscript) and not self.is_nn(e.func, k):
            return False  # kernel[grid](...) returns no tensor
        if self.is_nn(e.func, k):
            return True
        path = self.resolve(e.func, k)
        if path is not None:
            return path.startswith("torch.") and path.split(".")[-1] not in {
                "device", "Size", "is_tensor", "is_floating_point", "is_complex", "numel", "get_default_dtype",
                "finfo", "iinfo", "promote_types", "no_grad", "inference_mode"}
        if isinstance(e.func, ast.Name):
            if e.func.id in self.f.functions:
                return id(self.f.functions[e.func.id]) in self.R
            return (e.func.id in self.f.classes or e.func.id in _BUILTIN_PASSTHROUGH | _BUILTIN_COMPUTE) and any(
                self.t(a, k) for a in args)
        if isinstance(e.func, ast.Attribute):
            if e.func.attr in _NON_TENSOR_RESULT:
                return False
            local = self.targets(e.func, k, True)
            if local and not self.t(e.func.value, k):
                return any(id(fn) in self.R for fn, *_ in local)
            return self.t(e.func.value, k) or e.func.attr in _tensor_compute_methods()
        return any(self.t(a, k) for a in args)

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
        elif (a := _is_self_attr(target)) is not None:
            if cls is not None:
                cls.tensor_attrs.add(a)
        elif isinstance(target, ast.Attribute | ast.Subscript | ast.Starred):
            self._bind(target.value, k, True)  # d["x"] = t / box.v = t: the container now holds a tensor

    def _propagate(self, k: int) -> None:
        fn, cls, _ = self.fns[k]
        for n in self.nodes(fn):
            if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and self.t(n.value, k):
                for tgt in getattr(n, "targets", None) or [n.target]:
                    self._bind(tgt, k, self.container(n.value, k))
            elif isinstance(n, ast.Assign) and self.is_nn(n.value, k):
                self.N[k].update(t.id for t in n.targets if isinstance(t, ast.Name))
            if isinstance(n, ast.For | ast.AsyncFor | ast.comprehension):
                if self.is_nn(n.iter, k) and isinstance(n.target, ast.Name):
                    self.N[k].add(n.target.id)  # for layer in self.layers
                elif self.t(n.iter, k):  # for i, t in enumerate(ts): only t is a tensor
                    enum = isinstance(n.iter, ast.Call) and _dotted(n.iter.func) == "enumerate" \
                        and isinstance(n.target, ast.Tuple) and len(n.target.elts) == 2
                    self._bind(n.target.elts[1] if enum else n.target, k, False)
            elif isinstance(n, ast.withitem) and n.optional_vars is not None and self.t(n.context_expr, k):
                self._bind(n.optional_vars, k, False)
            elif isinstance(n, ast.Return) and self.t(n.value, k):
                self.R.add(k)
            elif isinstance(n, ast.Call):
                if isinstance(n.func, ast.Attribute) and n.func.attr in (
                        "append", "extend", "insert", "add", "update", "setdefault", "appendleft") \
                        and any(self.t(a, k) for a in n.args):
                    self._bind(n.func.value, k, True)
                for tfn, _, _, bound in self.targets(n.func, k, True):
                    self._seed(n, k, tfn, bound)
        if isinstance(fn, ast.Lambda) and self.t(fn.body, k):
            self.R.add(k)

    def _seed(self, call: ast.Call, k: int, fn: ast.AST, bound: bool) -> None:
        """Interprocedural: a parameter that receives a tensor at some call site holds a tensor."""
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args][1 if bound else 0:]
        names = self.T.setdefault(id(fn), set())
        for i, a in enumerate(call.args):
            if not self.t(a, k):
                continue
            if isinstance(a, ast.Starred):
                names.update(params)
            elif i < len(params):
                names.add(params[i])
            elif fn.args.vararg is not None:
                names.add(fn.args.vararg.arg)
        for kw in call.keywords:
            if self.t(kw.value, k):
                names.update([kw.arg] if kw.arg else params + [a.arg for a in fn.args.kwonlyargs])

    def container(self, e: ast.AST, k: int) -> bool:
        if isinstance(e, ast.Name):
            return e.id in self.C[k]
        if isinstance(e, ast.List | ast.Tuple | ast.Set | ast.Dict | ast.ListComp | ast.GeneratorExp):
            return True
        if isinstance(e, ast.Call):
            f = e.func
            return (isinstance(f, ast.Attribute) and f.attr in ("split", "chunk", "unbind", "tensor_split")) or (
                isinstance(f, ast.Name) and f.id in _BUILTIN_PASSTHROUGH)
        return False

    def launches(self) -> set[int]:
        """Functions that launch a kernel (kernel[grid](...)), directly or through callees."""
        out = set()
        for k, (fn, _, _) in self.fns.items():
            if any(_is_launch(n, self.f) for n in self.nodes(fn)):
                out.add(k)
        changed = True
        while changed:
            changed = False
            for k, callees in self.edges.items():
                if k not in out and callees & out:
                    out.add(k)
                    changed = True
        return out


def _scalar_annotation(a: ast.arg) -> bool:
    return isinstance(a.annotation, ast.Name) and a.annotation.id in ("int", "float", "bool", "str")


def _computing_compare(e: ast.Compare) -> bool:
    return not all(isinstance(op, ast.Is | ast.IsNot | ast.In | ast.NotIn) for op in e.ops)


def _is_launch(n: ast.AST, facts: _Facts) -> bool:
    if not isinstance(n, ast.Call):
        return False
    f = n.func
    return isinstance(f, ast.Subscript) or (isinstance(f, ast.Attribute) and f.attr in ("run", "warmup")
                                            and isinstance(f.value, ast.Name) and f.value.id in facts.jit)


def _torch_ok(path: str, is_call: bool) -> bool:
    parts = path.split(".")
    if parts[0] != "torch" or parts[1:2] == ["cuda"] or _PROCESS_ATTRS & set(parts):
        return True  # torch.cuda.*: device/stream management; torch.os.*: file_or_process_access reports it
    if len(parts) == 2 and parts[1] in _TORCH_CALLS:
        return True
    return not is_call and (path in _TORCH_REFS or (len(parts) == 2 and bool(_DTYPE_RE.match(parts[1]))))


_DECORATORS = {"triton.jit", "functools.lru_cache", "functools.cache", "functools.wraps", "dataclasses.dataclass",
               "torch.no_grad", "torch.inference_mode", "typing.final", "typing.overload", "staticmethod",
               "classmethod", "property"}
_IMPORT_TIME_CALLS = ("triton.Config", "triton.language.", "triton.jit", "triton.autotune", "triton.heuristics",
                      "triton.cdiv", "triton.next_power_of_2", "triton.runtime.driver.active.get_active_torch_device",
                      "math.", "torch.device", "torch.finfo", "torch.iinfo", "torch.no_grad", "torch.inference_mode",
                      "functools.lru_cache", "functools.wraps", "dataclasses.dataclass", "dataclasses.field",
                      "typing.", "enum.auto", "int", "float", "range", "tuple", "list", "dict", "set", "frozenset")


def _simple(e: ast.AST, f: _Facts) -> bool:
    """Can this expression run at import time without executing candidate code (literals, names, Config lists)?"""
    if isinstance(e, ast.Call):
        path = e.func.id if isinstance(e.func, ast.Name) and e.func.id not in f.aliases else f.resolve(e.func)
        ok = path is not None and (path in _IMPORT_TIME_CALLS or path.startswith(
            tuple(p for p in _IMPORT_TIME_CALLS if p.endswith("."))) or path in _DECORATORS)
        return ok and all(_simple(a, f) for a in [*e.args, *(k.value for k in e.keywords)])
    if isinstance(e, ast.Lambda | ast.Constant | ast.Name):
        return True  # a lambda's body only runs when called
    if isinstance(e, ast.Attribute | ast.Subscript | ast.Starred | ast.UnaryOp | ast.BinOp | ast.BoolOp | ast.Compare
                  | ast.IfExp | ast.Tuple | ast.List | ast.Set | ast.Dict | ast.Slice | ast.ListComp | ast.SetComp
                  | ast.GeneratorExp | ast.DictComp | ast.comprehension | ast.JoinedStr | ast.FormattedValue):
        return all(_simple(c, f) for c in ast.iter_child_nodes(e) if not isinstance(c, ast.expr_context | ast.operator
                                                                                    | ast.unaryop | ast.cmpop | ast.boolop))
    return False


def _def_ok(node: ast.AST, f: _Facts) -> bool:
    """Decorators and default values run at import: only trusted decorators and simple defaults."""
    for d in node.decorator_list:
        target = d.func if isinstance(d, ast.Call) else d
        path = target.id if isinstance(target, ast.Name) and target.id not in f.aliases else f.resolve(target)
        if path not in _DECORATORS and not (path or "").startswith(("triton.", "functools.", "dataclasses.")) \
                or not _simple(d, f):
            return False
    if isinstance(node, ast.ClassDef):
        return not node.keywords and all(isinstance(b, ast.Name | ast.Attribute) for b in node.bases)
    return all(_simple(d, f) for d in node.args.defaults + [d for d in node.args.kw_defaults if d is not None])


def _body_ok(stmts: list[ast.stmt], f: _Facts) -> list[ast.stmt]:
    """Statements of a module/class body that do more than import, define or bind constants."""
    bad = []
    for s in stmts:
        if isinstance(s, ast.Import | ast.ImportFrom | ast.Pass):
            continue
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str):
            continue  # docstring
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if not _def_ok(s, f):
                bad.append(s)
            if isinstance(s, ast.ClassDef):
                bad += _body_ok(s.body, f)
            continue
        targets = s.targets if isinstance(s, ast.Assign) else [s.target] if isinstance(s, ast.AnnAssign) else None
        names_only = targets is not None and all(
            isinstance(t, ast.Name) or (isinstance(t, ast.Tuple) and all(isinstance(x, ast.Name) for x in t.elts))
            for t in targets)
        if not (names_only and (s.value is None or _simple(s.value, f))):
            bad.append(s)
    return bad


def _root_name(e: ast.AST) -> str | None:
    while isinstance(e, ast.Attribute | ast.Subscript):
        e = e.value
    return e.id if isinstance(e, ast.Name) else None


def check_policy(source: str, *, entry: str = "ModelNew") -> list[Violation]:
    """All policy violations in a candidate's source, sorted by line. Raises SyntaxError for unparsable source."""
    tree = ast.parse(source)
    f = _Facts(tree)
    out: dict[tuple[str, int, str], Violation] = {}

    def add(rule: str, node: ast.AST | None, message: str) -> None:
        line = getattr(node, "lineno", 0)
        out.setdefault((rule, line, message), Violation(rule, line, message))

    if not f.jit_nodes:
        add("no_triton_kernel", None, "No @triton.jit function found; the computation must be written as a Triton "
                                      "kernel and launched from the entry point.")
    entries: list[tuple[ast.AST, _Class | None, str]] = []
    if entry == "kernel_function":
        if "kernel_function" in f.functions:
            entries.append((f.functions["kernel_function"], None, "kernel_function"))
        else:
            add("missing_entry", None, "Define a plain Python `def kernel_function(...)` wrapper (not @triton.jit) "
                                       "that launches your kernel(s) and returns the result.")
    else:
        cls = f.classes.get("ModelNew")
        entries += [(cls.methods[m], cls, f"ModelNew.{m}") for m in ("forward", "__call__", "_call_impl", "_wrapped_call_impl") if cls and m in cls.methods]
        if not entries:
            add("missing_entry", cls.node if cls else None, "Define `class ModelNew(nn.Module)` with a `forward` "
                "method taking the same inputs as Model.forward and launching your Triton kernel(s).")
    fw = _Forward(f, entries)
    _rule_compute(fw, add)
    _rule_fallback(fw, add)
    _rule_module(f, tree, add)
    return sorted(out.values(), key=lambda v: (v.line, v.rule))


def _rule_compute(fw: _Forward, add) -> None:
    f, methods = fw.f, _tensor_compute_methods()
    fix = "do this math inside a @triton.jit kernel (PyTorch may only allocate outputs and make views)"
    for k, (fn, _, name) in fw.fns.items():
        where = f"`{name}` (on the forward path)"
        nodes = list(fw.nodes(fn))
        funcs = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
        inner = {id(n.value) for n in nodes if isinstance(n, ast.Attribute)}
        in_loop = {id(x) for n in nodes if isinstance(n, ast.For | ast.While | ast.ListComp | ast.GeneratorExp
                                                       | ast.SetComp | ast.DictComp) for x in ast.walk(n)}
        for n in nodes:
            if isinstance(n, ast.Call):
                path, fn_ = fw.resolve(n.func, k), n.func
                args = [*n.args, *(kw.value for kw in n.keywords)]
                if path and not _torch_ok(path, True):
                    add("torch_compute_in_forward", n, f"{where} calls {path}(); {fix}.")
                elif fw.is_nn(fn_, k) or (isinstance(fn_, ast.Attribute) and fw.is_nn(fn_.value, k) and fn_.attr in (
                        "forward", "__call__", "_call_impl", "_wrapped_call_impl")):
                    add("torch_compute_in_forward", n, f"{where} calls the nn layer `{ast.unparse(fn_)}`; pass its "
                        f"parameters (e.g. .weight/.bias) to your kernel instead of calling it.")
                elif path is None and isinstance(fn_, ast.Attribute) and fn_.attr in methods and not (
                        fw.targets(fn_, k, True) and not fw.t(fn_.value, k)):
                    add("torch_compute_in_forward", n, f"{where} calls tensor method .{fn_.attr}(); {fix}.")
                elif isinstance(fn_, ast.Name) and fn_.id in _BUILTIN_COMPUTE and fn_.id not in f.functions \
                        and any(fw.t(a, k) for a in args):
                    add("torch_compute_in_forward", n, f"{where} applies builtin {fn_.id}() to tensors; {fix}.")
                elif path and path.split(".")[0] in ("math", "functools", "itertools", "collections", "operator") \
                        and any(fw.t(a, k) for a in args):
                    add("torch_compute_in_forward", n, f"{where} passes tensors to {path}(); {fix}.")
                elif id(n) in in_loop and (
                        (isinstance(fn_, ast.Attribute) and fn_.attr == "item" and fw.t(fn_.value, k))
                        or (isinstance(fn_, ast.Name) and fn_.id in _BUILTIN_SCALAR and any(fw.t(a, k) for a in args))):
                    add("torch_compute_in_forward", n, f"{where} reads tensor elements one by one into Python inside "
                                                       f"a loop (Python-level compute); {fix}.")
            elif isinstance(n, ast.Name | ast.Attribute) and isinstance(n.ctx, ast.Load) and id(n) not in funcs \
                    and id(n) not in inner and (path := fw.resolve(n, k)) and not _torch_ok(path, False):
                add("torch_compute_in_forward", n, f"{where} references {path} (a PyTorch op or module) outside a "
                                                   f"call it could be checked in; {fix}.")
            elif isinstance(n, ast.BinOp) and (isinstance(n.op, ast.MatMult) or fw.t(n.left, k) or fw.t(n.right, k)):
                op = _OPS.get(type(n.op), "?")
                add("torch_compute_in_forward", n, f"{where} applies the `{op}` operator to a tensor in Python "
                                                   f"(shape/grid integer arithmetic is fine); {fix}.")
            elif (isinstance(n, ast.UnaryOp) and not isinstance(n.op, ast.Not) and fw.t(n.operand, k)) or (
                    isinstance(n, ast.Compare) and fw.t(n, k)):
                add("torch_compute_in_forward", n, f"{where} applies a unary/comparison operator to a tensor in "
                                                   f"Python; {fix}.")
            elif isinstance(n, ast.AugAssign) and (fw.t(n.target, k) or fw.t(n.value, k)):
                add("torch_compute_in_forward", n, f"{where} updates a tensor in place with an operator "
                                                   f"(`{ast.unparse(n)[:40]}`); {fix}.")
            elif isinstance(n, ast.For | ast.comprehension) and fw.t(n.iter, k) and not fw.container(n.iter, k):
                add("torch_compute_in_forward", n.iter, f"{where} iterates over a tensor's elements in Python; {fix}.")


_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
        ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>"}


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
                add("fallback_try_except", n, f"`{name}` wraps a kernel launch in try/except whose handler does more "
                    "than re-raise; let launch errors propagate instead of falling back or swallowing them.")
            for h in n.handlers:
                broad = h.type is None or {_dotted(t) for t in (h.type.elts if isinstance(h.type, ast.Tuple)
                                                               else [h.type])} & {"Exception", "BaseException"}
                if broad and not all(isinstance(s, ast.Raise) for s in h.body):
                    add("fallback_try_except", h, f"`{name}` has a broad `except` that swallows errors on the "
                        "forward path; remove it or re-raise.")


def _rule_module(f: _Facts, tree: ast.Module, add) -> None:
    """Rules that apply anywhere in the module (kernels and __init__ included)."""
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Import | ast.ImportFrom):
            mods = [a.name for a in n.names] if isinstance(n, ast.Import) else ["." * n.level + (n.module or "")]
            for m in mods:
                if m not in _ALLOWED_MODULES and not m.startswith("triton.language."):
                    add("forbidden_import", n, f"Import of `{m}` is not allowed; only torch, torch.nn(.functional), "
                        "triton, triton.language and math/typing/functools/dataclasses/itertools/collections/"
                        "numbers/enum may be imported.")
            if isinstance(n, ast.ImportFrom) and n.module in ("torch", "triton") and not n.level and any(
                    a.name in _FORBIDDEN_FROM or a.name.startswith("_") for a in n.names):
                add("forbidden_import", n, f"Importing internals/submodules from `{n.module}` is not allowed; "
                                           "use only the public tensor, nn and triton APIs.")
        if isinstance(n, ast.Call):
            fname = n.func.id if isinstance(n.func, ast.Name) and n.func.id not in f.functions else None
            path = f.resolve(n.func)
            if fname == "__import__" or path == "importlib.import_module":
                add("forbidden_import", n, "Dynamic imports (__import__/importlib) are not allowed.")
            if fname in ("open", "exec", "eval", "compile", "input", "breakpoint"):
                add("file_or_process_access", n, f"`{fname}()` is not allowed in a kernel module; write the "
                                                 "computation as Triton code.")
            if isinstance(n.func, ast.Attribute) and n.func.attr in ("numpy", "tolist", "__array__"):
                add("file_or_process_access", n, f"`.{n.func.attr}()` moves tensor data into Python/NumPy; keep the "
                                                 "data on the device and compute in a Triton kernel.")
            if fname in ("globals", "locals", "vars", "dir"):
                add("introspection", n, f"`{fname}()` is not allowed; refer to names directly.")
            if fname in ("getattr", "setattr", "delattr") and len(n.args) >= 2 and (
                    _lit(n, 1) is None or f.resolve(n.args[0]) is not None):
                add("introspection", n, f"`{fname}` with a computed name or on a module is not allowed; use plain "
                                        "attribute access.")
            if fname in ("exit", "quit") or path in _EXITS or (path or "").startswith("signal."):
                add("early_exit", n, f"`{fname or path}()` would end or signal the process; return the kernel's "
                                     "output from the entry point instead.")
        elif isinstance(n, ast.Raise) and _dotted(getattr(n.exc, "func", n.exc)) in (
                "SystemExit", "KeyboardInterrupt", "GeneratorExit"):
            add("early_exit", n, "Raising SystemExit/KeyboardInterrupt would end the process; raise a normal "
                                 "exception or return the result.")
        elif isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            for t in getattr(n, "targets", None) or [n.target]:
                if isinstance(t, ast.Attribute | ast.Subscript) and _root_name(t) in f.aliases:
                    add("introspection", n, f"Assigning to `{ast.unparse(t)}` monkeypatches an imported module; "
                                            "never modify torch/triton or other modules.")
        elif isinstance(n, ast.FunctionDef) and n.name in ("__torch_function__", "__torch_dispatch__"):
            add("introspection", n, f"Defining {n.name} intercepts PyTorch dispatch; this is not allowed.")
        elif isinstance(n, ast.ClassDef) and n.keywords:
            add("introspection", n, "Class keywords (metaclass=...) run custom code at class creation; remove them.")
        if isinstance(n, ast.Attribute | ast.Name):
            ident = n.attr if isinstance(n, ast.Attribute) else n.id
            if ident in _ENV_NAMES or ident == "__builtins__":
                add("environment_access", n, f"Accessing `{ident}` (environment/builtins) is not allowed; kernels "
                                             "take all their inputs as arguments.")
            if ident in _INTROSPECT_ATTRS or ident in ("__builtins__", "__import__"):
                add("introspection", n, f"`{ident}` is introspection/dispatch machinery and is not allowed.")
            if isinstance(n, ast.Attribute) and ident in _PROCESS_ATTRS:
                add("file_or_process_access", n, f"Reaching `.{ident}` gives access to the OS/interpreter; it is not "
                                                 "allowed in a kernel module.")
            if id(n) not in inner and (path := f.resolve(n)):
                if path.split(".")[0] in _PROCESS_ROOTS or path in ("torch.load", "torch.save", "torch.from_numpy") \
                        or path.startswith(("torch.hub", "torch.utils.cpp_extension", "torch.ops.load_library")):
                    add("file_or_process_access", n, f"`{path}` accesses files, processes or the interpreter; it is "
                                                     "not allowed in a kernel module.")
                if path.startswith(_INTROSPECT_PATHS):
                    add("introspection", n, f"`{path}` touches PyTorch dispatch/interpreter internals or global "
                                            "RNG/default state; not allowed.")
    for s in _body_ok(tree.body, f):
        add("early_exit", s, f"Module/class-level code `{ast.unparse(s).splitlines()[0][:60]}` runs at import; keep "
                             "only imports, constants, Config lists and definitions (remove prints/tests/__main__).")
