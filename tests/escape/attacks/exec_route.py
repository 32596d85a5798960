# [exec route] Start an interpreter without the runtime guard, from the candidate's own guarded process: a link named
# like a compiler, the unaudited _posixsubprocess.fork_exec, the dynamic loader running python, a copy in our folder.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import _posixsubprocess
import glob
import shutil
import subprocess
import sys


def spawn_unaudited(argv):
    err_r, err_w = os.pipe()
    common = [
        [os.fsencode(a) for a in argv],
        [os.fsencode(argv[0])],
        True,
        (err_w,),
        None,
        None,
        -1,
        -1,
        -1,
        -1,
        -1,
        -1,
        err_r,
        err_w,
        True,
        False,
        -1,
        None,
        None,
        None,
        -1,
        None,
    ]
    pid = _posixsubprocess.fork_exec(*common, False)  # allow_vfork: 23 arguments on Python 3.11 to 3.13
    os.close(err_w)
    failure = os.read(err_r, 4096)
    os.close(err_r)
    status = os.waitpid(pid, 0)[1]
    if failure:
        raise PermissionError(failure.decode(errors="replace"))
    return None if os.waitstatus_to_exitcode(status) == 0 else f"exit {os.waitstatus_to_exitcode(status)}"


def linked_cc():
    link = os.path.abspath("cc")
    os.symlink(sys.executable, link)
    return subprocess.run([link, "-c", "pass"], check=True)


def copied():
    shutil.copy(os.path.realpath(sys.executable), "py-copy")
    os.chmod("py-copy", 0o755)
    return spawn_unaudited([os.path.abspath("py-copy"), "-c", "pass"])


loader = (glob.glob("/lib64/ld-linux*.so*") + glob.glob("/lib/ld-linux*.so*") + ["ld.so"])[0]
tries = {
    "link_named_cc": attempt(linked_cc),
    "fork_exec_python": attempt(lambda: spawn_unaudited([sys.executable, "-c", "pass"])),
    "loader_runs_python": attempt(lambda: spawn_unaudited([loader, sys.executable, "-c", "pass"])),
    "copy_in_folder": attempt(copied),
}
report(tries=tries)
