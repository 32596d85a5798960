"""Which paths a confined run may read and write (the parent's half; reaper.confine_filesystem applies them).

A run may read the system (libraries, compilers, the GPU driver's files, /proc, /sys), the Python installation and
the import path, and may write its own folder, its HOME/TMPDIR and the compile caches named in its environment.
It may not read the rest: the user's home, the agent's working directory with its `.env`, the runs folder with
other runs and the expected outputs, this source tree beyond the `kernelagent` package.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import re
import shutil
import site
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

# Read-only: what an interpreter and a compiler need (the CUDA driver's extra rules: gpu_rules). Not /run as a whole (containers mount secrets
# at /run/secrets), not /tmp, /home, /root, /srv, /mnt, /var. Of /dev only the few character devices a Python
# process uses: not /dev/shm (a candidate's file there outlived its run), not disks or /dev/kmsg, and no device node
# can be created (creating one needs write rights on a folder). GPU runs add the driver's nodes (gpu_rules).
_SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/etc", "/opt", "/sys", "/nix",
                "/snap", "/run/nvidia-persistenced", "dir:/dev", "/dev/urandom", "/dev/random")
_SYSTEM_WRITE = ("/dev/null", "/dev/zero", "/dev/full")
# Where the run's own tools keep files: Triton's and Inductor's caches wherever they are; HOME and TMPDIR only when
# they lie in the run's folder (where the sandbox points them), never a real home an explicit env passed through.
_CACHE_ENV = ("TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR")
_SCRATCH_ENV = ("HOME", "TMPDIR")
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the kernelagent package
_PACKAGE = _SOURCE_ROOT / "kernelagent"


def confinement_rules(
    cwd: Path, env: Mapping[str, str], *, gpu: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(readable, writable) for a run in cwd with env; a "dir:" prefix allows listing a folder, not reading files,
    "rw-files:" reading and writing files that exist there (no creating). gpu adds what CUDA needs (gpu_rules)."""
    caches = [env[name] for name in _CACHE_ENV if env.get(name)]
    scratch = [env[name] for name in _SCRATCH_ENV if env.get(name) and Path(env[name]).resolve().is_relative_to(cwd)]
    writable = [str(cwd), *caches, *scratch, *_SYSTEM_WRITE]
    readable = [*_SYSTEM_READ, *_proc(), *_python_installation(), *_import_path(env)]
    readable += [f"exec:{path}" for path in executables(gpu=gpu)]
    if gpu:
        gpu_read, gpu_write = gpu_rules()
        readable, writable = [*readable, *gpu_read], [*writable, *gpu_write]
    return tuple(dict.fromkeys(readable)), tuple(dict.fromkeys(writable))


# Test-only: programs added to what a run may execute (":"-separated), so the escape corpus can start an interpreter
# without the runtime guard and test the kernel's other layers against it. Never set in use.
EXTRA_EXECUTABLES_VAR = "KERNELAGENT_SANDBOX_EXTRA_EXECUTABLES"


def executables(*, gpu: bool) -> tuple[str, ...]:
    """What a confined run may execute (Landlock's EXECUTE right; reading everything else is not executing it): on
    the GPU, the programs Triton runs (compilers_for_triton); on the CPU, where Triton's interpreter compiles
    nothing, none. Never the Python interpreter or the run's folder: an interpreter started afresh has no runtime
    guard (an outside attacker started one through a link named `cc`)."""
    extra = [path for path in os.environ.get(EXTRA_EXECUTABLES_VAR, "").split(":") if path]
    found = [*(compilers_for_triton() if gpu else ()), *extra]
    return tuple(dict.fromkeys([*found, *(program_loader() if found else ())]))


@functools.cache
def compilers_for_triton() -> tuple[str, ...]:
    """Real paths of what Triton (3.x, NVIDIA backend) executes on a GPU: its bundled ptxas/cuobjdump/nvdisasm,
    the C compiler that builds its launcher ($CC, which Triton prefers, else cc/gcc/clang on PATH, with the
    programs gcc runs from its own installation: cc1, collect2, as, ld) and the interpreter of any of them that is
    a script (a wrapper script is denied at exec unless its interpreter may run too: on the H200, /opt/gcc/bin/gcc
    was refused). Not ldconfig: Ubuntu's is a shell script, and confined runs are told where libcuda lies instead
    (libcuda_folder). Resolved once, before any candidate code runs, from files alone (no program is run)."""
    programs = _compiler_programs()
    found = [*programs, *(folder for path in programs for folder in _compiler_folders(path)), *script_interpreters()]
    # Triton's knobs for its NVIDIA tools (else the bundled ones, below).
    knobs = ("TRITON_PTXAS_PATH", "TRITON_PTXAS_BLACKWELL_PATH", "TRITON_CUOBJDUMP_PATH", "TRITON_NVDISASM_PATH")
    found += [os.path.realpath(os.environ[name]) for name in knobs if os.environ.get(name)]
    spec = importlib.util.find_spec("triton")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "backends" / "nvidia" / "bin"
        if bundled.is_dir():
            found.append(str(bundled))
    return tuple(dict.fromkeys(found))


@functools.cache
def script_interpreters() -> tuple[str, ...]:
    """The interpreters of the compilers that are scripts: Landlock must let them run (the kernel execs them for
    the script), but nothing may start them by name (runtime_guard.AllowedPrograms leaves them out)."""
    found = [interpreter for path in _compiler_programs() if (interpreter := _script_interpreter(path))]
    return tuple(dict.fromkeys(found))


@functools.cache
def _compiler_programs() -> tuple[str, ...]:
    """Real paths of $CC (Triton's first choice) and of cc, gcc, clang, as and ld on PATH."""
    search = os.environ.get("PATH", "") + ":/sbin:/usr/sbin"
    named = [os.environ["CC"]] if os.environ.get("CC") else []
    named += [path for name in ("cc", "gcc", "clang", "as", "ld") if (path := shutil.which(name, path=search))]
    programs = [os.path.realpath(shutil.which(path, path=search) or path) for path in named]
    programs = [path for path in programs if os.path.isfile(path)]
    wrapped = [target for path in programs for target in _wrapped_programs(path)]
    return tuple(dict.fromkeys([*programs, *wrapped]))


def _wrapped_programs(program: str) -> list[str]:
    """What a compiler that is a script runs in its place (the H200's /opt/gcc/bin/gcc is
    `exec /opt/gcc/bin/gcc-real -B/opt/gcc/bin/ -B/opt/gcc/lib/gcc/x86_64-linux-gnu/13/ ...`: refused at exec when
    only the script was allowed, then at cc1, which -B points gcc-real to): the executable files and the folders its
    text names by absolute path inside its own installation (PREFIX of PREFIX/bin), and the files beside it whose
    names start with its own (gcc-real, gcc-12), for a script that names them from $0. Never a shell or another
    interpreter, which would let a candidate run anything."""
    if _script_interpreter(program) is None:
        return []
    try:
        text = Path(program).read_text(errors="replace")[:65536]
    except OSError:
        return []
    folder, name = Path(program).parent, Path(program).name
    prefix = folder.parent
    named = {Path(word) for word in re.findall(r"(/[\w.+/-]+)", text) if Path(word).is_relative_to(prefix)}
    beside = {path for path in folder.iterdir() if path.name.startswith((f"{name}-", f"{name}."))}
    found = {os.path.realpath(path) for path in named | beside if path.is_file() and os.access(path, os.X_OK)}
    found |= {os.path.realpath(path) for path in named if path.is_dir()}  # gcc's -B folders (cc1, collect2, as)
    return sorted(path for path in found if path != os.path.realpath(program) and not _is_interpreter(path))


INTERPRETERS = re.compile(r"(sh|bash|dash|zsh|ksh|csh|tcsh|fish|busybox|env|python[\d.]*|perl[\d.]*|ruby|node|lua)")


def _is_interpreter(path: str) -> bool:
    return INTERPRETERS.fullmatch(Path(path).name) is not None


def _compiler_folders(program: str) -> list[str]:
    """Where a compiler at PREFIX/bin keeps the programs it runs (gcc: PREFIX/libexec/gcc, PREFIX/lib/gcc; as and ld
    beside it), for /usr and for a toolchain of its own such as /opt/gcc."""
    prefix = Path(program).parent.parent
    folders = [prefix / "libexec" / "gcc", prefix / "lib" / "gcc"]
    tools = [prefix / "bin" / tool for tool in ("as", "ld")]
    return [str(path) for path in folders if path.is_dir()] + [os.path.realpath(t) for t in tools if t.is_file()]


def _script_interpreter(program: str) -> str | None:
    """The real path of the interpreter a script names on its #! line (through /usr/bin/env too), else None."""
    try:
        with open(program, "rb") as file:
            first = file.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1:
        found = shutil.which(words[1])
        return os.path.realpath(found) if found else None
    return os.path.realpath(words[0])


@functools.cache
def program_loader() -> tuple[str, ...]:
    """The dynamic loader (a dynamically linked program cannot start unless its loader may be executed too)."""
    return tuple(os.path.realpath(path) for path in glob.glob("/lib64/ld-linux*.so*") + glob.glob("/lib/ld-linux*.so*"))


OWN_THREADS = "/proc/self/task"  # resolved by the child that applies the rules: its own threads only


def gpu_rules() -> tuple[list[str], list[str]]:
    """What a confined CUDA process needs beyond the CPU rules, from what the driver and torch are known to open:
    the driver's device nodes read-write (every CUDA call is an ioctl on them; ioctls stay allowed, as Landlock's
    IOCTL_DEV right is not handled), the driver's libraries and /sys, /proc/driver/nvidia read-only (already in the
    system rules), and /dev/shm for existing files only: torch's CUDA IPC opens the lender's reference-count file
    there by name, but a candidate may not create files that would outlive it. The run's own threads' files too
    (/proc/self/task, resolved by the child when it applies the rules, so no other process's): cuInit names the
    driver's threads by writing /proc/<pid>/task/<tid>/comm and fails with error 304 (cudaErrorOperatingSystem) if
    it may not, as it did on the H200 under the rules without it. HOME (CUDA's JIT cache) and TMPDIR lie in the
    run's folder. benchmarks/cuda_confinement_probe.py checks these on a GPU machine."""
    nodes = sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/nvidia-caps/*"))
    readable = ["dir:/dev/nvidia-caps", "rw-files:/dev/shm", f"rw-files:{OWN_THREADS}"]
    return readable, [node for node in nodes if not os.path.isdir(node)]



@functools.cache
def libcuda_folder() -> str | None:
    """The folder of libcuda.so, found once by Triton's own lookup in this unconfined process, for confined GPU runs
    (TRITON_LIBCUDA_PATH): Triton otherwise runs `ldconfig -p`, a shell script on Ubuntu, and a confined run may not
    execute a shell (on the H200 Triton failed there). None where no driver is found."""
    try:
        from triton.backends.nvidia.driver import libcuda_dirs  # noqa: PLC0415 - GPU runs only

        folders = [folder for folder in libcuda_dirs() if os.path.isdir(folder)]
    except Exception:  # noqa: BLE001 - no driver, or a Triton without this lookup: the run then finds its own way
        return None
    with_link = [folder for folder in folders if os.path.exists(os.path.join(folder, "libcuda.so"))]
    return (with_link or folders or [None])[0]


@functools.cache  # the same for every run of this process: kept off the per-candidate path
def _proc() -> list[str]:
    """/proc without other processes' folders: the agent's /proc/PID/environ and mem hold its API keys, and a root
    candidate could read them. Its own folder comes through /proc/self, which the child resolves when it applies
    the rules; the system-wide entries (cpuinfo, meminfo, sys, driver/nvidia, ...) are read as usual."""
    try:
        shared = [f"/proc/{name}" for name in os.listdir("/proc") if not name.isdigit()]
    except OSError:
        return []
    return ["dir:/proc", "/proc/self", "/proc/thread-self", *sorted(set(shared) - {"/proc/self", "/proc/thread-self"})]


@functools.cache
def _python_installation() -> list[str]:
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    executable = Path(sys.executable)
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    return [*sorted(prefixes), str(executable.parent), str(executable.resolve().parent), *([user_site] if user_site else [])]


def _import_path(env: Mapping[str, str]) -> list[str]:
    """This interpreter's sys.path (what .pth files and PYTHONPATH added, as a child started the same way would get)
    and the child's PYTHONPATH, minus working directories; this source tree only as its package."""
    entries = [*sys.path, *env.get("PYTHONPATH", "").split(":")]
    rules = []
    for entry in entries:
        if not entry or not Path(entry).is_absolute():
            continue  # "" and relative entries mean some working directory, never a place to open up
        path = Path(entry).resolve()
        if path == _SOURCE_ROOT:  # a source checkout: its .env, runs/ and tests stay closed
            rules += [f"dir:{path}", str(_PACKAGE)]
        elif path != Path.cwd().resolve():
            rules.append(str(path))
    return rules


# Where a system keeps files for root's eyes only (/etc/shadow, ssh host keys, TLS private keys). Landlock lets every
# confined run read /etc; a run that keeps root (GPU runs, which share the judge's uid) owns those files too, and an
# outside attacker read /etc/shadow that way. Such a run gets them masked in its mount namespace (reaper._hide).
HIDDEN_ROOTS = ("/etc",)


@functools.cache
def root_only_paths(roots: tuple[str, ...]) -> tuple[str, ...]:
    """Files other users may not read and folders they may not list, below roots (not following links): for a run
    that keeps root, these are masked (an empty file or folder in their place)."""
    found: list[str] = []
    for root in roots:
        for folder, dirs, files in os.walk(root, followlinks=False):
            for name in list(dirs):
                path = os.path.join(folder, name)
                mode = _lstat_mode(path)
                if mode is not None and stat.S_ISDIR(mode) and mode & 0o005 != 0o005:
                    found.append(path)
                    dirs.remove(name)  # masked whole
            for name in files:
                path = os.path.join(folder, name)
                mode = _lstat_mode(path)
                if mode is not None and stat.S_ISREG(mode) and not mode & 0o004:
                    found.append(path)
    return tuple(found)


def _lstat_mode(path: str) -> int | None:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return None
