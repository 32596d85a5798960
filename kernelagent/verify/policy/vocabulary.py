"""The policy's vocabulary: which modules, torch calls and tensor methods are allowed, and which names mean
file, process, environment or introspection access."""

from __future__ import annotations

import ast
import functools
import re


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
    "torch.device torch.finfo torch.iinfo dataclasses.field enum.auto int float range tuple list dict set frozenset "
    # version and device probes (liger's is_hip(), the tutorials' is_cuda(), persistent kernels' NUM_SMS)
    "triton.runtime.driver.active.get_current_target triton.runtime.driver.active.get_current_device "
    "triton.runtime.driver.active.utils.get_device_properties torch.cuda.is_available torch.cuda.device_count "
    "torch.cuda.get_device_capability torch.cuda.get_device_properties torch.cuda.get_device_name "
    "torch.cuda.current_device str bool isinstance hasattr len min max")


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
