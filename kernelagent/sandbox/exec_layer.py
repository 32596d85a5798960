"""Cold runs of `python -m MODULE`: the interpreter had to be executable to start, so take that right back (a further
Landlock layer allowing only the run's own executables) before MODULE's first line.

Run as ``python PATH/exec_layer.py EXECUTABLES_JSON MODULE ARGS...`` (runner._startable does): by path, so it works
whatever the run's import path, which it then leaves as `python -m MODULE` would have it."""

from __future__ import annotations

import json
import os
import runpy
import sys

from reaper import landlock_abi, restrict_execution  # beside this file: sys.path[0] is this folder


def main() -> None:
    executable, module, args = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3:]
    if not restrict_execution(executable) and landlock_abi() >= 1:
        sys.exit("sandbox: could not take back the right to execute the interpreter")
    sys.argv = [module, *args]
    sys.path[0] = os.getcwd()  # what `python -m MODULE` puts first
    del sys.modules["reaper"]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
