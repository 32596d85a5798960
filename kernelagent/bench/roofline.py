"""Roofline: the GPU's measured ceilings (copy bandwidth, matmul rates) and how close a timed kernel gets to them.

    python -m kernelagent.bench.roofline OUT.json     # the measuring child: writes the ceilings of GPU 0
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path.home() / ".cache" / "kernelagent" / "ceilings.json"
SKIPPED = {"skipped": "ceilings need a CUDA GPU"}
COPY_BYTES = 1024**3  # large enough that caches play no part
MATMUL_N = 8192
MATMUL_DTYPES = ("float32", "tf32", "bfloat16", "float16")


def ceilings(cache_path: Path | None = None, *, timeout_s: float = 300, gpu: str | None = None) -> dict:
    """{"gpu", "copy_gbps", "matmul_tflops": {dtype: TFLOP/s}}, measured once per GPU name and torch version.

    gpu: the slot's CUDA_VISIBLE_DEVICES value to measure on (the timer passes the GPU it holds to itself, so that
    nothing else runs there while the ceilings are measured); None: this process's first GPU."""
    import torch

    if not torch.cuda.is_available():
        return dict(SKIPPED)
    path = Path(cache_path) if cache_path else CACHE
    cache = _read(path)
    name = _gpu_name(gpu)
    if name and _key(name, torch.__version__) in cache:
        return cache[_key(name, torch.__version__)]
    measured = _measure_in_child(timeout_s, gpu)
    for gpu in {measured["gpu"], name} - {None}:  # nvidia-smi and torch may spell the name differently
        cache[_key(gpu, torch.__version__)] = measured
    _write(path, cache)
    return measured


def roofline(ms: float, bytes_: int, flops: int, ceilings: dict, dtype: str) -> dict:
    """The floor a kernel cannot beat (bytes at copy bandwidth, FLOPs at the matmul rate) and how close ms gets.

    "fraction" is floor / ms (1.0 = at the ceiling); "bound" says which term sets the floor.
    """
    if ms <= 0:
        raise ValueError(f"a time must be positive, got {ms}")
    rates = ceilings["matmul_tflops"]
    tflops = rates.get(dtype) or rates["float32"]
    memory_ms = bytes_ / (ceilings["copy_gbps"] * 1e9) * 1e3
    compute_ms = flops / (tflops * 1e12) * 1e3
    floor = max(memory_ms, compute_ms)
    return {
        "floor_ms": floor,
        "fraction": floor / ms,
        "bound": "memory" if memory_ms >= compute_ms else "compute",
        "achieved_gbps": bytes_ / ms / 1e6,
        "achieved_tflops": flops / ms / 1e9,
        "memory_floor_ms": memory_ms,
        "compute_floor_ms": compute_ms,
    }


def physical_floor_ms(bytes_: int, ceilings: dict) -> float:
    """The time no kernel can beat: the bytes it must move at the measured copy bandwidth. FLOPs are left out on
    purpose: the reference's FLOP count is not a lower bound on the work (an algebraic shortcut, such as summing
    the weights before a matmul whose output is summed, or skipping the zero half of a triangular matmul, is an
    honest kernel that does less)."""
    return bytes_ / (ceilings["copy_gbps"] * 1e9) * 1e3


def traffic(model: object, inputs: list, outputs: object) -> dict:
    """Fewest bytes a kernel must move (inputs, parameters and outputs, each once) and the FLOPs torch counts."""
    from torch.utils.flop_counter import FlopCounterMode

    from kernelagent.verify.loading import tensors_in

    state = list(model.state_dict().values())
    moved = _nbytes(inputs) + _nbytes(state) + _nbytes(outputs)
    with FlopCounterMode(display=False) as counter:
        model(*inputs)
    flops = int(counter.get_total_flops())
    source = "flop_counter"
    if flops == 0:  # elementwise and reductions: torch counts none; one op per input element is a lower bound
        flops = sum(t.numel() for t in tensors_in(inputs))
        source = "numel_lower_bound"
    return {"bytes": moved, "flops": flops, "flops_source": source}


def _nbytes(values: object) -> int:
    from kernelagent.verify.loading import tensors_in

    seen, total = set(), 0
    for t in tensors_in(values):
        key = (t.data_ptr(), t.numel(), t.dtype)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
    return total


def _key(gpu: str, torch_version: str) -> str:
    return f"{gpu} | torch {torch_version}"


def _gpu_name(gpu: str | None = None) -> str | None:
    """That GPU's name (default: the first visible) without creating a CUDA context in this (long-lived) process."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    index = gpu or os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    try:
        out = subprocess.run(
            [smi, "-i", index, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _measure_in_child(timeout_s: float, gpu: str | None = None) -> dict:
    import tempfile

    pinned = {"CUDA_VISIBLE_DEVICES": gpu} if gpu is not None else {}
    with tempfile.TemporaryDirectory(prefix="kernelagent-ceilings-") as tmp:
        out = Path(tmp) / "ceilings.json"
        run = subprocess.run(
            [sys.executable, "-m", "kernelagent.bench.roofline", str(out)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **pinned, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
        if run.returncode != 0 or not out.exists():
            raise RuntimeError(f"measuring the GPU's ceilings failed: {run.stderr.strip()[-1500:]}")
        return json.loads(out.read_text())


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(cache, indent=2) + "\n")
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------------------------
# The measuring child


def measure() -> dict:
    """A 1 GiB device-to-device copy (bytes read + written) and 8192^3 matmuls on random data, timed like kernels."""
    import torch

    from kernelagent.bench.timing_runner import CudaClock, bench

    clock = CudaClock()
    copy_gbps = _copy_gbps(clock, bench)
    rates = {name: _matmul_tflops(name, clock, bench) for name in MATMUL_DTYPES}
    return {
        "gpu": clock.name(),
        "copy_gbps": copy_gbps,
        "matmul_tflops": rates,
        "torch": torch.__version__,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "method": f"median of CUDA-event timings, L2 flushed; copy of {COPY_BYTES >> 20} MiB; "
        f"{MATMUL_N}^3 torch.matmul on random data",
    }


def _copy_gbps(clock: object, bench: object) -> float:
    import torch

    src = torch.rand(COPY_BYTES // 4, device="cuda")
    dst = torch.empty_like(src)
    result = bench(lambda: dst.copy_(src), clock)
    return round(2 * COPY_BYTES / result["ms"] / 1e6, 1)  # bytes read + bytes written, per second


def _matmul_tflops(name: str, clock: object, bench: object) -> float:
    import torch

    dtype = torch.float32 if name in ("float32", "tf32") else getattr(torch, name)
    a = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, device="cuda", dtype=dtype)
    out = torch.empty(MATMUL_N, MATMUL_N, device="cuda", dtype=dtype)
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
    try:
        result = bench(lambda: torch.matmul(a, b, out=out), clock, rep_ms=200)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    return round(2 * MATMUL_N**3 / result["ms"] / 1e9, 1)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.write_text(json.dumps(measure(), indent=2))
