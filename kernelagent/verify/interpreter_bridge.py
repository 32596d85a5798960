"""Make Triton's CPU interpreter (TRITON_INTERPRET=1) treat a kernel the way the GPU compiler does, and name what it
cannot do.

`install()` runs in the candidate's process after `import torch, triton` and before the candidate is imported. Each
bridge only adds what the GPU compiler already does; none loosens a check:
- a Python float kernel argument is an fp32 scalar (the compiler specialises floats as fp32; the interpreter left a
  Python float, so `scale.to(tl.float32)` failed);
- `tl.range` loop variables are int32/int64 scalars, as on the GPU (the interpreter yielded Python ints);
- `@triton.autotune` runs every config once and keeps the first (the GPU times them on its benchmarker; the
  interpreter has no driver to time with, so autotuned kernels failed with "0 active drivers");
- libdevice functions (`tl.extra.libdevice`, `tl.extra.cuda.libdevice`, `tl.extra.hip.libdevice`) compute their
  math with NumPy in the argument's dtype (the interpreter had stubs returning None or no extern calls at all).
`unsupported_feature(err)` names the interpreter limitation behind an exception, so the verdict says
`interpreter_unsupported` rather than blaming the kernel.
"""

from __future__ import annotations

import ast
import importlib
import math
import traceback

_installed = False


class InterpreterUnsupported(NotImplementedError):
    """A feature the GPU compiler has and the interpreter lacks; the message names it."""


def install() -> None:
    """Bridge the interpreter's gaps (idempotent). Does nothing unless Triton's interpreter module is importable."""
    global _installed
    if _installed:
        return
    try:
        from triton.runtime import interpreter  # noqa: PLC0415
    except ImportError:
        return
    _installed = True
    _float_arguments_as_fp32(interpreter)
    _typed_range_variables(interpreter)
    _libdevice_with_numpy(interpreter)
    _autotune_without_timing()
    _elementwise_bool_ops(interpreter)
    _constexpr_values_of_bare_types()


def _scalar(interpreter, value):  # noqa: ANN001, ANN202
    """A tl scalar as the interpreter makes one for an int argument; floats become fp32, as the compiler types them."""
    import numpy as np  # noqa: PLC0415
    import triton.language as tl  # noqa: PLC0415

    if isinstance(value, float):
        return tl.tensor(interpreter.TensorHandle(np.array([value], dtype=np.float32), tl.float32), tl.float32)
    return interpreter._implicit_cvt(value)


def _float_arguments_as_fp32(interpreter) -> None:  # noqa: ANN001
    original = getattr(interpreter, "_implicit_cvt", None)
    if original is None:
        return

    def implicit_cvt(arg):  # noqa: ANN001, ANN202
        return _scalar(interpreter, arg) if isinstance(arg, float) else original(arg)

    interpreter._implicit_cvt = implicit_cvt


def _typed_range_variables(interpreter) -> None:  # noqa: ANN001
    original = getattr(interpreter, "_patch_lang_core", None)
    if original is None:
        return

    def patch_lang_core(lang, *args, **kwargs):  # noqa: ANN001, ANN202
        result = original(lang, *args, **kwargs)
        python_range = lang.range  # the interpreter's replacement: a Python range over ints

        def tensor_range(*range_args, **range_kwargs):  # noqa: ANN202
            for i in python_range(*range_args, **range_kwargs):
                yield interpreter._implicit_cvt(i)

        scope = args[0] if args else kwargs.get("scope")
        if scope is not None and hasattr(scope, "set_attr"):
            scope.set_attr(lang, "range", tensor_range)  # restored with the rest of the scope after the launch
        return result

    interpreter._patch_lang_core = patch_lang_core


def _autotune_without_timing() -> None:
    try:
        from triton.runtime.autotuner import Autotuner  # noqa: PLC0415
    except ImportError:
        return

    def run_once(kernel_call, quantiles=None, **_):  # noqa: ANN001, ANN202
        kernel_call()  # every config still runs (a config that fails fails here, as on the GPU)
        return [0.0] * len(quantiles or (0.5,))

    Autotuner.do_bench = property(lambda self: self._do_bench or run_once)


# libdevice name -> NumPy function over arrays (in the argument's dtype). Predicates return int32, as CUDA's do.
def _numpy_table() -> dict:
    import numpy as np  # noqa: PLC0415

    erf = np.vectorize(math.erf, otypes=[np.float64])
    same = {n: getattr(np, n) for n in ("exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sin", "cos", "tan",
                                        "sinh", "cosh", "tanh", "sqrt", "cbrt", "floor", "ceil", "trunc", "rint",
                                        "hypot", "copysign", "fmod", "arctan2")}
    table = {
        **same,
        "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2, "asinh": np.arcsinh,
        "acosh": np.arccosh, "atanh": np.arctanh, "abs": np.abs, "fabs": np.abs, "pow": np.power, "powf": np.power,
        "fmax": np.fmax, "fmin": np.fmin, "max": np.maximum, "min": np.minimum, "rsqrt": lambda x: 1 / np.sqrt(x),
        "sqrt_rn": np.sqrt, "rcp_rn": lambda x: 1 / x, "div_rn": np.divide, "fast_dividef": np.divide,
        "fast_expf": np.exp, "fast_logf": np.log, "exp10": lambda x: np.power(10, x), "erf": erf,
        "nearbyint": np.rint, "round": lambda x: np.trunc(x + np.copysign(0.5, x)),
        "fma": lambda a, b, c: a * b + c, "fma_rn": lambda a, b, c: a * b + c,
        "isnan": np.isnan, "isinf": np.isinf, "finitef": np.isfinite, "isfinited": np.isfinite,
        "signbit": np.signbit, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "erfc": lambda x: 1 - erf(x), "logistic": lambda x: 1 / (1 + np.exp(-x)),
    }
    return table


_PREDICATES = frozenset({"isnan", "isinf", "finitef", "isfinited", "signbit"})


def _libdevice_with_numpy(interpreter) -> None:  # noqa: ANN001
    table = _numpy_table()
    for path in ("triton.language.extra.libdevice", "triton.language.extra.cuda.libdevice",
                 "triton.language.extra.hip.libdevice"):
        try:
            module = importlib.import_module(path)
        except ImportError:
            continue
        for name in [n for n in dir(module) if not n.startswith("_")]:
            if callable(getattr(module, name)) and not isinstance(getattr(module, name), type):
                setattr(module, name, _elementwise(interpreter, name, table.get(name)))


def _elementwise(interpreter, name: str, np_fn):  # noqa: ANN001, ANN202
    def fn(*args, _semantic=None, **kwargs):  # noqa: ANN001, ANN202
        if np_fn is None:
            raise InterpreterUnsupported(f"libdevice.{name} has no CPU implementation in the interpreter")
        import numpy as np  # noqa: PLC0415
        import triton.language as tl  # noqa: PLC0415

        tensors = [a for a in args if isinstance(a, tl.tensor)]
        if not tensors:
            raise InterpreterUnsupported(f"libdevice.{name} on non-tensor arguments")
        like = max(tensors, key=lambda t: t.handle.data.size)
        dtype = next((t.dtype.scalar for t in tensors if t.dtype.scalar.is_floating()), like.dtype.scalar)
        arrays = [a.handle.data if isinstance(a, tl.tensor) else a for a in args]
        with np.errstate(all="ignore"):
            out = np.asarray(np_fn(*arrays))
        if name in _PREDICATES:
            out_dtype = tl.int32
            out = out.astype(np.int32)
        else:
            out_dtype = dtype
            out = out.astype(like.handle.data.dtype if not dtype.is_floating() else _np_dtype(dtype))
        out = np.broadcast_to(out, like.handle.data.shape).copy()
        ty = tl.block_type(out_dtype, like.type.shape) if like.type.is_block() else out_dtype
        return tl.tensor(interpreter.TensorHandle(out, out_dtype), ty)

    fn.__name__ = name
    return fn


def _np_dtype(dtype):  # noqa: ANN001, ANN202
    import numpy as np  # noqa: PLC0415

    return {"fp16": np.float16, "fp32": np.float32, "fp64": np.float64, "bf16": np.float32}.get(dtype.name, np.float32)


# Messages of the interpreter's own NotImplementedErrors / missing builder methods, and the feature each stands for.
_KNOWN = {
    "extern_elementwise": "extern (libdevice) calls",
    "inline_asm": "inline PTX assembly (tl.inline_asm_elementwise)",
    "create_inline_asm": "inline PTX assembly (tl.inline_asm_elementwise)",
}


def unsupported_feature(err: BaseException) -> str | None:
    """The interpreter limitation behind an exception raised while running a candidate under TRITON_INTERPRET=1, or
    None when the exception is the kernel's own (a bug, a wrong shape, a failed assertion)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, InterpreterUnsupported):
            return str(err)
        if isinstance(err, NotImplementedError) and _raised_in_interpreter(err):
            message = str(err) or type(err).__name__
            return next((feature for key, feature in _KNOWN.items() if key in message), message)
        if isinstance(err, AttributeError) and "InterpreterBuilder" in str(err):
            missing = str(err).rsplit("'", 2)[-2] if str(err).count("'") >= 4 else str(err)
            return f"{missing} (no interpreter implementation)"
        err = err.__cause__ or err.__context__
    return None


def _raised_in_interpreter(err: BaseException) -> bool:
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and any("/triton/runtime/interpreter.py" in f.filename or "/triton/language/" in f.filename
                                for f in frames[-3:])


def _elementwise_bool_ops(interpreter) -> None:  # noqa: ANN001
    """`a < M and b < N` on tensors: the GPU compiler makes `and`/`or` elementwise, the interpreter ran Python's, which
    keeps one operand (a published flag-gems log_softmax then read past its rows and crashed). The interpreter already
    rewrites each kernel's AST; this adds BoolOp to that rewrite, keeping Python's short-circuit for plain values."""
    transformer = getattr(interpreter, "ASTTransformer", None)
    if transformer is None or "visit_BoolOp" in vars(transformer):
        return

    def visit_BoolOp(self, node):  # noqa: ANN001, ANN202, N802 - ast.NodeTransformer's naming
        node = self.generic_visit(node)
        no_args = ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])
        thunks = [ast.Lambda(args=no_args, body=value) for value in node.values]
        name = "_kernelagent_and" if isinstance(node.op, ast.And) else "_kernelagent_or"
        return ast.copy_location(ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=thunks, keywords=[]), node)

    transformer.visit_BoolOp = visit_BoolOp
    # The rewritten kernel runs with the interpreter module's globals added to its own.
    interpreter._kernelagent_and = _bool_op(conjunction=True)
    interpreter._kernelagent_or = _bool_op(conjunction=False)


def _bool_op(*, conjunction: bool):  # noqa: ANN202
    import triton.language as tl  # noqa: PLC0415

    def combine(*thunks):  # noqa: ANN002, ANN202
        result = thunks[0]()
        for thunk in thunks[1:]:
            if isinstance(result, tl.tensor):
                other = thunk()
                result = (result != 0) & (other != 0) if conjunction else (result != 0) | (other != 0)
            elif bool(result) != conjunction:
                return result  # Python's short-circuit for constexpr and plain values, as the compiler folds them
            else:
                result = thunk()
        return result

    return combine


def _constexpr_values_of_bare_types() -> None:
    """On the GPU a `tl.constexpr` dtype argument is a constexpr whose `.value` is the dtype; the interpreter passes the
    dtype itself, so published helpers that read `dtype.value` (flag-gems' get_dtype_min/max) failed on CPU only."""
    import triton.language as tl  # noqa: PLC0415

    if not hasattr(tl.dtype, "value"):
        tl.dtype.value = property(lambda self: self)
