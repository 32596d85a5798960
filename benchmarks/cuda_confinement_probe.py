"""Which extra Landlock rule lets CUDA initialise in a confined child? (GPU machine; GPU runs are unconfined until
this is known: see verifier.confines_filesystem.)

    python3 benchmarks/cuda_confinement_probe.py

Each variant forks (torch imported, CUDA untouched, like the warm pool's server), applies the sandbox's rules plus the
variant's extra readable or writable path, initialises CUDA and prints OK or the error. Seen on an H100 (2026-11-25):
every read-only variant, "/" included, failed with error 304; only "w:/" worked.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from kernelagent.sandbox.filesystem import confinement_rules  # noqa: E402
from kernelagent.sandbox.reaper import confine_filesystem  # noqa: E402

VARIANTS = ("none", "r:/proc", "r:/run", "r:/", "w:/tmp", "w:/proc", "w:/run", "w:/sys", "w:/var", "w:/")


def main() -> None:
    cwd = Path(tempfile.mkdtemp(prefix="cuda-confinement-"))
    env = {"HOME": str(cwd), "TMPDIR": str(cwd), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    readable, writable = confinement_rules(cwd, env)
    for variant in VARIANTS:
        kind, _, path = variant.partition(":")
        extra_read, extra_write = ([path] if kind == "r" else []), ([path] if kind == "w" else [])
        pid = os.fork()
        if pid == 0:
            confined = confine_filesystem([*readable, *extra_read], [*writable, *extra_write])
            try:
                total = torch.ones(2, device="cuda").sum().item()
                print(f"{variant:<10} confined={confined} OK ({total})", flush=True)
            except Exception as err:  # noqa: BLE001 - the error is the finding
                print(f"{variant:<10} confined={confined} FAIL {str(err)[:120]}", flush=True)
            os._exit(0)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
