"""Loading a Python file as a module by path and building ModelNew, shared by the judge, the candidate runner and the
timing child."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so that dataclasses and triton's source lookup (inspect.getsource) can find it.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class InterfaceError(Exception):
    """ModelNew does not match Model's constructor, parameters or signature."""


def build_model(entry: type, init: dict, device: str, dtype: str | None):  # noqa: ANN201 - an nn.Module
    """ModelNew exactly as the verifier and the timer build it: the reference's init inputs and seed, constructed
    under the device (as the judge builds Model: KernelBench's 2-billion-parameter MLP, built on the host first,
    held 6 GiB of host memory in the candidate and was killed by the per-run limit), its state_dict loaded strictly,
    then device and dtype."""
    import torch

    torch.manual_seed(init["seed"])
    try:
        with torch.device(device):  # parameters made where they will live, never on the host first
            model = entry(*init["init_inputs"])
    except Exception as err:
        raise InterfaceError(f"ModelNew(*get_init_inputs()) failed: {type(err).__name__}: {err}") from err
    try:
        model.load_state_dict(init["state_dict"], strict=True)
    except Exception as err:
        raise InterfaceError(f"Model's state_dict does not load into ModelNew: {err}") from err
    model = model.to(device).eval()
    return model.to(getattr(torch, dtype)) if dtype else model


def tensors_in(value: object) -> list:
    """The tensors of a forward's result, however nested in lists and tuples."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in tensors_in(v)]
    return []


def report_writer(path: Path) -> Callable[[dict], None]:
    """Atomic JSON report writes for a child that runs untrusted code: json.dumps and Path.replace are bound now,
    before the candidate loads, so patching them later changes nothing."""
    dumps, replace = json.dumps, Path.replace

    def write(report: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(dumps(report, default=str))
        replace(tmp, path)

    return write


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
