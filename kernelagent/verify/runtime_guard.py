"""Runtime guard, inside the candidate's process: what its code may do while it is imported, built and run.

This is the second line behind the static policy, and the weaker of the judge's two kinds of evidence: whether an
output is right is decided by the judge in its own process, which the candidate cannot reach; whether the output
was computed by Triton kernels is observed here, in the candidate's process, and so is best effort. What makes it
hard to step around:

- every compute aten op is reported to the judge the moment it runs (the first few per draw), so a candidate cannot
  take back evidence once it is sent; ops are matched by namespace and name (`aten::clone`, not `clone`);
- an audit hook (which Python offers no way to remove) refuses threads, processes, signals, sockets, ctypes and the
  introspection that reaches our state (gc referrers, other threads' frames, our own frames);
- new OS threads are noticed by their task ids, whatever started them;
- the dispatch mode's presence is checked at every Triton launch and after every phase, so switching it off or
  pushing another mode on top is seen.
"""

from __future__ import annotations

import os
import sys
import threading

import torch
from torch.utils._python_dispatch import TorchDispatchMode, _get_current_dispatch_mode

# aten ops that allocate, move, reinterpret or describe memory. Anything else computes and must happen in Triton.
# Not here on purpose: _local_scalar_dense (.item(): Python-side arithmetic on elements), _neg_view/_conj and
# resolve_neg/resolve_conj (lazy negation or conjugation materialised by a copy), and any op outside aten.
ALLOWED_OPS = frozenset(
    """
    empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like new_zeros ones ones_like new_ones
    full full_like new_full fill_ zero_ arange copy_ clone _to_copy detach detach_ alias lift_fresh lift_fresh_copy
    set_ view _unsafe_view reshape _reshape_alias as_strided as_strided_ expand permute transpose t unsqueeze
    squeeze unsqueeze_ squeeze_ transpose_ t_ slice select narrow split split_with_sizes chunk unbind view_as
    expand_as movedim unfold diagonal sym_size sym_stride sym_numel sym_storage_offset stride size numel dim
    is_contiguous resize_ record_stream view_as_real view_as_complex _has_compatible_shallow_copy_type contiguous
    _pin_memory pin_memory is_pinned
    """.split()
)
# Reading a few scalars (a count, a flag) is normal in a wrapper; an element loop is Python-side compute.
MAX_SCALAR_READS = 16
MAX_REPORTED_OPS = 20


class GuardEvidence:
    """What the guard saw during one phase; `report` sends an event to the judge at once (a callable bound by the
    runner before any candidate code ran)."""

    def __init__(self, report) -> None:  # noqa: ANN001 - Callable[[dict], None]
        self._report = report
        self.compute_ops: list[str] = []
        self.scalar_reads = 0
        self.refusals: list[str] = []

    def next_phase(self) -> None:
        """Compute ops are judged per phase (import and __init__ may initialise weights; forward may not compute)."""
        self.compute_ops = []
        self.scalar_reads = 0

    def compute(self, op: str) -> None:
        if op not in self.compute_ops and len(self.compute_ops) < MAX_REPORTED_OPS:
            self.compute_ops.append(op)
            self._report({"event": "guard", "what": "compute_op", "detail": op})

    def refused(self, what: str) -> None:
        if len(self.refusals) < MAX_REPORTED_OPS:
            self.refusals.append(what)
            self._report({"event": "guard", "what": "refused", "detail": what})


def _own_mode_stack():  # noqa: ANN202
    """Enter/exit for the recorder through the C functions themselves, bound now: `seal_dispatch` later replaces
    every public way to pop or disable dispatch modes, and the recorder must not depend on any of them."""
    push, pop = torch._C._push_on_torch_dispatch_stack, torch._C._pop_torch_dispatch_stack

    def enter(self):  # noqa: ANN001, ANN202
        push(self)
        return self

    def exit(self, *exc_info):  # noqa: ANN001, ANN002, ANN202
        pop(None)

    return enter, exit


class OpRecorder(TorchDispatchMode):
    """Reports every compute op that runs while active (in this thread: other threads are refused by the hook)."""

    __enter__, __exit__ = _own_mode_stack()

    def __init__(self, evidence: GuardEvidence) -> None:
        super().__init__()
        self.evidence = evidence

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's signature
        namespace, _, name = _qualified_name(func).partition("::")
        if namespace != "aten" or name not in ALLOWED_OPS:
            if namespace == "aten" and name == "_local_scalar_dense":
                self.evidence.scalar_reads += 1
                if self.evidence.scalar_reads > MAX_SCALAR_READS:
                    self.evidence.compute(f"aten::_local_scalar_dense x{self.evidence.scalar_reads} (.item() loop)")
            else:
                self.evidence.compute(f"{namespace}::{name}")
        return func(*args, **(kwargs or {}))


def _qualified_name(func: object) -> str:
    schema = getattr(func, "_schema", None)
    if schema is not None:
        return schema.name  # e.g. "aten::add"; a custom op keeps its own namespace
    return f"?::{func}"


def mode_is_active(recorder: OpRecorder) -> bool:
    """Our mode is the innermost dispatch mode and Python dispatch is not switched off for this thread."""
    excluded = torch._C._dispatch_tls_is_dispatch_key_excluded(torch._C.DispatchKey.Python)
    return _get_current_dispatch_mode() is recorder and not excluded


class LaunchCounter:
    """Counts outermost Triton launches by wrapping `run` on every KernelInterface class (jit, autotune, ...), and
    checks at each launch that the op recorder is still in place."""

    def __init__(self) -> None:
        self.launches = 0
        self.recorder: OpRecorder | None = None
        self.inside = lambda: getattr(self._depth, "value", 0) > 0
        self.mode_lost = False
        self._depth = threading.local()

    def install(self) -> None:
        from triton.runtime.jit import KernelInterface

        for cls in _all_subclasses(KernelInterface):
            if "run" in cls.__dict__:
                cls.run = self._wrap(cls.run)

    def _wrap(self, run):  # noqa: ANN001, ANN202
        counter = self

        def counted_run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            depth = getattr(counter._depth, "value", 0)
            if depth == 0:
                counter.launches += 1
                if counter.recorder is not None and not mode_is_active(counter.recorder):
                    counter.mode_lost = True
            counter._depth.value = depth + 1
            try:
                return run(*args, **kwargs)
            finally:
                counter._depth.value = depth

        return counted_run


def _all_subclasses(cls: type) -> list[type]:
    found, stack = [], [cls]
    while stack:
        current = stack.pop()
        for sub in current.__subclasses__():
            if sub not in found:
                found.append(sub)
                stack.append(sub)
    return found


# ------------------------------------------------------------------------------------------------------------------
# The audit hook


# Refused outright once armed: these reach threads, processes, signals, the network, raw memory, or our state.
REFUSED_EVENTS = frozenset(
    {
        "os.fork",
        "os.forkpty",
        "os.spawn",
        "os.system",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "gc.get_referrers",
        "gc.get_referents",
        "gc.get_objects",
        "sys._current_frames",
        "sys.settrace",
        "sys.setprofile",
        "sys.set_asyncgen_hooks_firstiter",
        "_thread.start_new_thread",
        "pickle.find_class",
        "code.__new__",
        "function.__new__",
        "cpython.run_command",
        "cpython.remote_debugger_script",
    }
)


class AllowedPrograms:
    """The programs Triton runs itself (its ptxas, the C compiler for its launcher), by
    real path and inode, resolved before any candidate code runs: a name proves nothing (a link named `cc` to the
    interpreter started a Python without this hook). The same list is all Landlock lets the run execute
    (filesystem.executables); this check only names the refusal in the evidence."""

    def __init__(self) -> None:
        from kernelagent.sandbox.filesystem import executables, script_interpreters

        gpu = os.environ.get("TRITON_INTERPRET", "").strip().lower() not in ("1", "true", "on", "yes", "y")
        self._files: dict[str, tuple[int, int]] = {}
        self._folders: list[str] = []
        for path in set(executables(gpu=gpu)) - set(script_interpreters()):  # a shell runs a script, never by name
            if os.path.isdir(path):
                self._folders.append(path.rstrip("/") + "/")
            elif (identity := _identity(path)) is not None:
                self._files[path] = identity

    def allows(self, program: str, env_path: str | None) -> bool:
        import shutil

        found = program if "/" in program else shutil.which(program, path=env_path or os.environ.get("PATH"))
        if not found:
            return False
        real = os.path.realpath(found)
        if real in self._files:
            return _identity(real) == self._files[real]
        return any(real.startswith(folder) for folder in self._folders)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class AuditGuard:
    """Installed once per process (audit hooks cannot be removed); refuses what REFUSED_EVENTS names once armed."""

    def __init__(self, evidence: GuardEvidence, own_files: frozenset[str]) -> None:
        self.evidence = evidence
        self.armed = False
        self._own_files = own_files
        self._inside = threading.local()
        self._programs = AllowedPrograms()

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if not self.armed or getattr(self._inside, "value", False):
            return
        self._inside.value = True
        try:
            refusal = self._refusal(event, args)
        finally:
            self._inside.value = False
        if refusal:
            self.evidence.refused(refusal)
            raise PermissionError(f"refused in a candidate's process: {refusal}")

    def _refusal(self, event: str, args: tuple) -> str | None:
        if event in REFUSED_EVENTS:
            return event
        if event.startswith("ctypes."):
            return event
        if event in ("subprocess.Popen", "os.posix_spawn", "os.exec"):  # posix_spawn/exec: how Popen starts it
            program = _program_of(event, args)
            return None if self._programs.allows(program, _path_of(args)) else f"{event}({program})"
        if event == "sys._getframe":
            frame = args[0] if args else None
            code = getattr(frame, "f_code", None)
            if code is not None and code.co_filename in self._own_files:
                return "sys._getframe reaching the harness's frames"
        if event == "object.__setattr__" and args and isinstance(args[0], type):
            owner = getattr(args[0], "__module__", "") or ""
            if owner.startswith(("kernelagent", "torch.utils._python_dispatch", "triton.runtime")) or args[0] in (
                torch.Tensor,
                torch.nn.Module,
            ):
                return f"patching {owner}.{args[0].__name__}.{args[1] if len(args) > 1 else '?'}"
        return None


def _program_of(event: str, args: tuple) -> str:
    """subprocess.Popen: (executable, args, cwd, env), executable None meaning args[0]; posix_spawn/exec: (path,
    argv, env)."""
    if not args:
        return "?"
    program = args[0]
    if program is None and event == "subprocess.Popen" and len(args) > 1:
        argv = args[1]
        program = argv if isinstance(argv, (str, bytes)) else next(iter(argv), "?")
    return os.fsdecode(program) if isinstance(program, (str, bytes, os.PathLike)) else "?"


def _path_of(args: tuple) -> str | None:
    env = args[-1] if args and isinstance(args[-1], dict) else None
    value = env.get("PATH", env.get(b"PATH")) if env else None
    return os.fsdecode(value) if value is not None else None


def refuse_python_threads() -> None:
    """Threads started through the threading module or _thread fail at once (also where Python has no audit event for
    them); threads started any other way are caught by their task ids (`new_task_ids`)."""
    import _thread

    def no_threads(*args: object, **kwargs: object) -> None:
        raise PermissionError("refused in a candidate's process: starting a thread")

    for module, name in ((_thread, "start_new_thread"), (_thread, "start_new"), (_thread, "start_joinable_thread")):
        if hasattr(module, name):
            setattr(module, name, no_threads)
    for name in ("_start_new_thread", "_start_joinable_thread"):
        if hasattr(threading, name):
            setattr(threading, name, no_threads)


# Ways to pop, replace or switch off Python dispatch modes; a candidate's forward has no use for any of them.
_DISPATCH_SWITCHES = (
    (torch._C, "_pop_torch_dispatch_stack"),
    (torch._C, "_DisableTorchDispatch"),
    (torch._C, "_ExcludeDispatchKeyGuard"),
    (torch._C, "_unset_dispatch_mode"),
    (torch._C, "_set_dispatch_mode"),
    (torch._C, "_DisablePythonDispatcher"),
    ("torch.utils._python_dispatch", "_pop_mode"),
    ("torch.utils._python_dispatch", "_pop_mode_temporarily"),
    ("torch.utils._python_dispatch", "_disable_current_modes"),
    ("torch.utils._python_dispatch", "_pop_torch_dispatch_stack"),
)


# Reading the mode stack hands out the recorder itself (and with it the evidence it has not yet sent).
_MODE_GETTERS = (
    ("torch.utils._python_dispatch", "_get_current_dispatch_mode"),
    ("torch.utils._python_dispatch", "_get_current_dispatch_mode_stack"),
    (torch._C, "_get_dispatch_stack_at"),
    (torch._C, "_get_dispatch_mode"),
)
# Ways to read tensor data into Python or NumPy, where arithmetic no dispatch mode sees can happen. Triton's
# interpreter never needs them, and a launch (counted) is where it runs: they are refused outside launches only.
_DATA_EXITS = (
    (torch.Tensor, "tolist"),
    (torch.Tensor, "numpy"),
    (torch.Tensor, "__array__"),
    (torch.Tensor, "__dlpack__"),
    (torch.UntypedStorage, "tolist"),
    (torch.UntypedStorage, "__getitem__"),
)


def seal_data_exits(inside_launch) -> None:  # noqa: ANN001 - Callable[[], bool]
    """Tensor data leaves for Python or NumPy only inside a Triton launch (the interpreter's business)."""
    for owner, name in _DATA_EXITS:
        original = getattr(owner, name, None)
        if original is not None:
            setattr(owner, name, _only_inside_launches(original, f"{owner.__name__}.{name}", inside_launch))


def _only_inside_launches(original, what: str, inside_launch):  # noqa: ANN001, ANN202
    def guarded(*args: object, **kwargs: object) -> object:
        if not inside_launch():
            raise PermissionError(f"refused in a candidate's process: {what} (tensor data into Python or NumPy)")
        return original(*args, **kwargs)

    return guarded


def seal_dispatch() -> None:
    """Replace every switch in _DISPATCH_SWITCHES with one that refuses; the recorder keeps its own (see above)."""
    import importlib

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError("refused in a candidate's process: reading or switching PyTorch dispatch modes")

    for owner, name in _DISPATCH_SWITCHES + _MODE_GETTERS:
        module = importlib.import_module(owner) if isinstance(owner, str) else owner
        if hasattr(module, name):
            setattr(module, name, refused)


def task_ids() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        return set()


def protected_functions() -> dict[str, object]:
    """Identities a timed candidate must not replace (the timing child checks them after each candidate)."""
    import builtins
    import json

    return {
        "torch.Tensor.__eq__": torch.Tensor.__eq__,
        "torch.Tensor.detach": torch.Tensor.detach,
        "torch.Tensor.clone": torch.Tensor.clone,
        "json.dumps": json.dumps,
        "builtins.open": builtins.open,
        "OpRecorder.__torch_dispatch__": OpRecorder.__torch_dispatch__,
        "TorchDispatchMode.__enter__": TorchDispatchMode.__enter__,
        "LaunchCounter._wrap": LaunchCounter._wrap,
    }
