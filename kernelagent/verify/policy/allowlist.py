"""The allow-list: every name a candidate may reach is named here; anything else is refused by default.

A dotted path that starts at an imported module is canonicalised against the installed packages (a module reached as
an attribute, `F.torch`, is re-rooted at its own name) and must be a member this module names; a module may never be a
value (only an attribute base or a module-level alias); bare names are the module's own or these builtins; attributes
of values (tensors, layers, configs) are the public attributes of the types a candidate handles, or names the module
itself defines. So `torch.serialization.pickle.loads`, `dataclasses._create_fn` or
`torch.utils.data.dataloader.threading` are refused without being listed anywhere.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re

from kernelagent.verify.policy.vocabulary import _DTYPE_RE, _TORCH_CALLS, _w

BUILTINS = _w(
    "int float bool str len range min max abs sum round divmod tuple list dict set frozenset enumerate zip map filter "
    "reversed sorted isinstance issubclass any all iter next hasattr getattr setattr slice super staticmethod "
    "classmethod property object callable repr hash ord chr pow bin hex oct format print True False None "
    "NotImplemented Ellipsis Exception ValueError TypeError RuntimeError NotImplementedError AssertionError KeyError "
    "IndexError AttributeError ImportError ModuleNotFoundError ZeroDivisionError ArithmeticError OverflowError "
    "StopIteration LookupError Warning UserWarning")

# Modules a candidate may import, and the members each names ("*": public members that are not modules).
_TRITON_LANGUAGE = ("triton.language", "triton.language.math", "triton.language.standard", "triton.language.core",
                    "triton.language.extra", "triton.language.extra.libdevice", "triton.language.extra.cuda",
                    "triton.language.extra.cuda.libdevice", "triton.language.extra.hip",
                    "triton.language.extra.hip.libdevice", "triton.language.random")
MEMBERS: dict[str, frozenset[str] | str] = {
    **{m: "*" for m in _TRITON_LANGUAGE},
    "triton": _w("jit autotune heuristics Config cdiv next_power_of_2 language runtime tools set_allocator "
                 "__version__ JITFunction OutOfResources"),
    "triton.runtime": _w("driver Config autotune heuristics jit JITFunction Autotuner Heuristics KernelInterface"),
    "triton.runtime.driver": _w("active"),
    "triton.tools": _w("tensor_descriptor"),
    "triton.tools.tensor_descriptor": _w("TensorDescriptor"),
    "torch": "torch",  # see _torch_member
    "torch.version": _w("hip cuda __version__"),
    "torch.cuda": _w("is_available get_device_capability get_device_properties get_device_name current_device "
                     "device_count current_stream synchronize device Stream Event set_device is_bf16_supported"),
    "torch.nn": "torch.nn",
    "torch.nn.functional": "*",
    "torch.nn.init": "*",
    "torch.autograd": _w("Function"),
    "math": "*",
    "typing": _w("Any Optional Union List Tuple Dict Set FrozenSet Callable Sequence Iterable Iterator Mapping Type "
                 "Literal NamedTuple TypedDict overload final cast TYPE_CHECKING ClassVar Final Protocol"),
    "numbers": "*",
    "collections.abc": "*",
    "__future__": _w("annotations"),
    "functools": _w("partial lru_cache cache wraps reduce cached_property total_ordering"),
    "dataclasses": _w("dataclass field fields replace asdict astuple is_dataclass InitVar"),
    "itertools": _w("product chain repeat count accumulate combinations permutations islice zip_longest starmap"),
    "collections": _w("namedtuple OrderedDict defaultdict deque Counter abc"),
    "enum": _w("Enum IntEnum Flag IntFlag auto unique"),
}
# A member of a triton.runtime.driver object: `triton.runtime.driver.active.get_current_target().backend`
_DRIVER = _w("active get_current_target get_active_torch_device get_current_device utils get_device_properties")

# Public attributes of values that still lead to files, shared memory, process-wide state or code generation.
_VALUE_DENY = _w("numpy tolist storage untyped_storage share_memory_ share_memory from_file pin_memory apply_ map_ "
                 "map2_ register_hook register_post_accumulate_grad_hook compile src set_ backward grad_fn "
                 "register_forward_hook register_forward_pre_hook register_full_backward_hook register_backward_hook "
                 "register_full_backward_pre_hook register_state_dict_pre_hook register_load_state_dict_post_hook "
                 "register_state_dict_post_hook register_load_state_dict_pre_hook with_traceback")
# Attributes of the objects a wrapper handles that introspection of the types below does not list.
_VALUE_EXTRA = _w("fn run warmup best_config configs kwargs num_warps num_stages num_ctas maxnreg pre_hook key "
                  "multi_processor_count major minor name total_memory backend arch warp_size max_shared_mem "
                  "n_regs n_spills metadata eps max min tiny bits resolution smallest_normal hip cuda T mT H mH "
                  "value type weight bias running_mean running_var "
                  # Triton type facts set per instance (tl.pointer_type.element_ty, tl.dtype.int_bitwidth): read by
                  # published kernels (flag-gems, fla) inside @triton.jit bodies to pick accumulator types.
                  "element_ty int_bitwidth primitive_bitwidth fp_mantissa_width exponent_bias scalar")


def canonical(path: str) -> str | None:
    """`F.torch.serialization` -> `torch.serialization`: the path re-rooted at the last module it passes through.
    None where the root is not an importable module of MEMBERS' packages."""
    parts = path.split(".")
    if parts[0] not in {m.split(".")[0] for m in MEMBERS} or any(p.startswith("_") and p != "__version__"
                                                                  for p in parts[1:]):
        return path
    try:
        obj = importlib.import_module(parts[0])
    except ImportError:
        return path
    root, rest = parts[0], parts[1:]
    for i, p in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, p)
        except Exception:  # noqa: BLE001 - a missing or failing attribute: leave the rest as written
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except Exception:  # noqa: BLE001
                break
        if inspect.ismodule(obj):
            root, rest = obj.__name__, parts[i + 1:]
    return ".".join([root, *rest])


def path_allowed(path: str) -> bool:
    """Is this dotted path (already through the module's aliases) a member the allow-list names?"""
    path = canonical(path)
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        module, rest = ".".join(parts[:cut]), parts[cut:]
        if module in MEMBERS:
            return _member_allowed(module, rest) if rest else True
    return False


def is_module(path: str) -> bool:
    return canonical(path) in MEMBERS


def _member_allowed(module: str, rest: list[str]) -> bool:
    rule, head, tail = MEMBERS[module], rest[0], rest[1:]
    if module == "triton.runtime.driver":
        return all(p in _DRIVER for p in rest)
    if rule == "torch":
        ok = _torch_member(head)
    elif rule == "torch.nn":
        ok = head in _nn_members()
    elif rule == "*":
        obj = _lookup(module, head)
        home = getattr(obj, "__module__", None)  # F.handle_torch_function is torch.overrides': not F's own
        ok = not head.startswith("_") and not inspect.ismodule(obj) and (
            home in (None, module, "torch", "torch._C._nn", "builtins") or home.startswith("triton.language"))
    else:
        ok = head in rule
    return ok and all(value_attr_allowed(p) for p in tail)


def _lookup(module: str, name: str) -> object:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ImportError:
        return None


def _torch_member(name: str) -> bool:
    return name in _TORCH_CALLS or name in _TORCH_FACTS or bool(_DTYPE_RE.match(name)) or name in _torch_ops()


_TORCH_FACTS = _w("Tensor Size device dtype finfo iinfo no_grad inference_mode version cuda nn __version__ strided "
                  "contiguous_format preserve_format channels_last inf nan is_grad_enabled get_default_device "
                  "randn rand randint randn_like rand_like randint_like randperm normal linspace logspace eye "
                  "Generator float8_e4m3fn float8_e5m2 autograd")


@functools.lru_cache(maxsize=1)
def _torch_ops() -> frozenset[str]:
    """torch.X that is also a Tensor method: an op on tensors (compute is judged on the forward path, not here)."""
    import torch  # noqa: PLC0415 - lazy: follows the installed torch

    return frozenset(n for n in dir(torch.Tensor) if not n.startswith("_") and n not in _VALUE_DENY
                     and hasattr(torch, n) and not inspect.ismodule(getattr(torch, n)))


@functools.lru_cache(maxsize=1)
def _nn_members() -> frozenset[str]:
    """torch.nn's layer classes (nn.Module subclasses), Parameter, and its functional / init modules."""
    import torch.nn as nn  # noqa: PLC0415

    layers = {n for n in dir(nn) if not n.startswith("_") and inspect.isclass(getattr(nn, n))
              and issubclass(getattr(nn, n), nn.Module)}
    return frozenset(layers | {"Parameter", "functional", "init", "ParameterList", "ParameterDict"})


@functools.lru_cache(maxsize=1)
def _value_attrs() -> frozenset[str]:
    """Public attributes of tensors, layers, dtypes, Triton tensors/configs/kernels and builtin containers."""
    import torch  # noqa: PLC0415
    import triton  # noqa: PLC0415
    import triton.language as tl  # noqa: PLC0415

    types = [torch.Tensor, torch.nn.Module, torch.dtype, torch.finfo, torch.iinfo, torch.device, torch.Size,
             tl.tensor, tl.dtype, tl.constexpr, triton.Config, triton.runtime.JITFunction, dict, list, tuple, set,
             torch.autograd.function.FunctionCtx, *(getattr(tl, n) for n in ("tensor_descriptor", "block_type")
                                                    if hasattr(tl, n)),
             str, int, float, bool, slice, range, BaseException]
    names = {n for t in types for n in dir(t) if not n.startswith("_")}
    # layer settings (nn.GroupNorm(...).num_groups) and tensors (.weight, .running_mean)
    try:  # Triton >= 3.4: host-side TMA descriptors
        from triton.tools.tensor_descriptor import TensorDescriptor  # noqa: PLC0415

        names |= {n for n in dir(TensorDescriptor) if not n.startswith("_")}
    except ImportError:
        pass
    return frozenset((names | _nn_settings() | _VALUE_EXTRA) - _VALUE_DENY)


@functools.lru_cache(maxsize=1)
def _nn_settings() -> frozenset[str]:
    """Constructor arguments and __constants__ of torch.nn layers, minus their tensors: integer/float/bool settings."""
    import torch  # noqa: PLC0415

    names: set[str] = set()
    for cls in vars(torch.nn).values():
        if inspect.isclass(cls) and issubclass(cls, torch.nn.Module):
            names |= set(getattr(cls, "__constants__", ()))
            try:
                names |= set(inspect.signature(cls.__init__).parameters)
            except (TypeError, ValueError):
                pass
    return frozenset(names - {"self", "args", "kwargs", "weight", "bias", "device", "dtype"})


def nn_setting(name: str) -> bool:
    return name in _nn_settings()


def value_attr_allowed(name: str) -> bool:
    return name in _value_attrs()


_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)


def encoding_problem(source: str) -> str | None:
    """Python reads a file by its coding cookie (PEP 263): `# coding: utf-7` would turn what we parse as a comment into
    code. The module is written and read as UTF-8, so the source must be valid UTF-8 with no cookie and no NUL."""
    if "\x00" in source:
        return "the source contains a NUL byte"
    try:
        source.encode("utf-8")
    except UnicodeEncodeError:
        return "the source is not valid UTF-8 text"
    for i, line in enumerate(source.lstrip("\ufeff").splitlines()[:2], 1):
        if _COOKIE.match(line):
            return f"line {i} is a coding declaration (`{line.strip()[:40]}`)"
    return None
