"""Child process: runs the user's PyTorch reference once per input draw and saves inputs and expected outputs.

    python -m kernelagent.verify.reference_runner CONFIG.json

The candidate never sees the expected outputs: they stay in the harness folder, and only the inputs and the
initial state are copied into a candidate's working folder.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import torch

from kernelagent.verify.loading import load_module, pick_device

LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text())
    out = Path(config["out_dir"])
    try:
        meta = build_reference_artifacts(config, out)
    except Exception as err:  # the user's reference failed: say where, for the user (not the LLM)
        (out / "error.txt").write_text(f"{type(err).__name__}: {err}\n\n{traceback.format_exc()}")
        return 1
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return 0


def build_reference_artifacts(config: dict, out: Path) -> dict:
    device = pick_device(config["device"])
    problem = load_module(Path(config["problem_path"]), "kernelagent_reference")
    overridden = apply_size_overrides(problem, config.get("sizes", {}))
    seed = int(config["seed"])
    low = LOW_PRECISION.get(config.get("precision", "spec"))

    init_inputs = list(problem.get_init_inputs())
    torch.manual_seed(seed)
    model = problem.Model(*init_inputs).to(device).eval()
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if low is not None:
        # The candidate gets weights rounded to the low precision; the reference computes in fp32 on the same
        # rounded values, so the only difference left is the kernel's own arithmetic.
        state_dict = {k: v.to(low) if v.is_floating_point() else v for k, v in state_dict.items()}
        model.load_state_dict({k: v.float() for k, v in state_dict.items()})
    torch.save({"init_inputs": init_inputs, "state_dict": state_dict, "seed": seed}, out / "init.pt")

    draws, warnings = [], []
    for k in range(int(config["draws"])):
        torch.manual_seed(seed + 1 + k)  # a fresh draw each time; the seed is random per run, never a constant
        inputs = list(problem.get_inputs())
        if low is not None:
            inputs = [x.to(low) if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs]
        warnings += _input_warnings(inputs, k)
        expected = _run(model, inputs, device, upcast=low is not None)
        if low is not None:
            expected = _cast_outputs(expected, low)
        if k == 0 and not _same(expected, _run(model, inputs, device, upcast=low is not None)):
            warnings.append("the reference is not deterministic on the same inputs; comparisons may be flaky")
        torch.save(inputs, out / f"inputs_{k}.pt")
        torch.save(expected, out / f"expected_{k}.pt")
        draws.append({"inputs": _describe(inputs), "outputs": _describe(expected)})
    return {
        "device": device,
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
        "seed": seed,
        "draws": draws,
        "sizes_overridden": overridden,
        "precision": config.get("precision", "spec"),
        "warnings": warnings,
        "torch": torch.__version__,
    }


def apply_size_overrides(problem: object, sizes: dict[str, int]) -> dict[str, list[int]]:
    """KernelBench problems keep sizes in module globals that get_inputs() reads at call time."""
    overridden = {}
    for name, value in sizes.items():
        if not isinstance(getattr(problem, name, None), int):
            raise KeyError(f"--size {name}=...: the reference has no module-level integer named {name!r}")
        overridden[name] = [getattr(problem, name), int(value)]
        setattr(problem, name, int(value))
    return overridden


def _run(model: torch.nn.Module, inputs: list, device: str, *, upcast: bool) -> object:
    moved = [x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs]
    if upcast:
        moved = [x.float() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in moved]
    with torch.no_grad():
        result = model(*moved)
    return _to_cpu(result)


def _to_cpu(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (list, tuple)):
        return [_to_cpu(v) for v in value]
    return value


def _cast_outputs(value: object, dtype: torch.dtype) -> object:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, list):
        return [_cast_outputs(v, dtype) for v in value]
    return value


def _same(a: object, b: object) -> bool:
    from kernelagent.verify.compare import compare_outputs

    return compare_outputs(a, b).ok


def _input_warnings(inputs: list, draw: int) -> list[str]:
    warnings = []
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.numel() > 1 and bool((x == x.flatten()[0]).all()):
            warnings.append(f"draw {draw}: get_inputs()[{i}] is constant; it cannot catch indexing bugs")
    return warnings


def _describe(values: object) -> list[dict]:
    from kernelagent.verify.compare import flatten_outputs

    return [
        {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
        if isinstance(v, torch.Tensor)
        else {"value": repr(v)[:40]}
        for v in flatten_outputs(values)
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
