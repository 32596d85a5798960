"""compare_outputs: honest variants of a computation pass, the attacks that broke the old rule fail, with a message.

Each case builds (got, expected, low): `expected` is the reference in float64, `low` PyTorch's reference in the
problem dtype, `got` what a Triton kernel could produce. Honest variants compute the same function in another order
or precision a correct kernel would use; attacks are wrong kernels. ratio = max(worst element error / its allowance,
error norm / allowed norm): honest cases must stay below 1, attacks above. `python tests/test_compare.py` prints the
worst ratios (the numbers quoted in kernelagent/verify/tolerances.py).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernelagent.verify.compare import compare_outputs, flatten_outputs  # noqa: E402

LOG2E = 1.4426950408889634


def _seq_matmul(a: torch.Tensor, b: torch.Tensor, block: int = 16) -> torch.Tensor:
    """fp32 accumulation over K in blocks, in order (what a Triton K loop does)."""
    acc = torch.zeros(a.shape[0], b.shape[1], dtype=torch.float32)
    for k in range(0, a.shape[1], block):
        acc += a[:, k : k + block].float() @ b[k : k + block].float()
    return acc


def _seq_sum(x: torch.Tensor, block: int = 32) -> torch.Tensor:
    acc = torch.zeros(x.shape[:-1], dtype=torch.float32)
    for k in range(0, x.shape[-1], block):
        acc += x[..., k : k + block].float().sum(-1)
    return acc


def _tf32(x: torch.Tensor) -> torch.Tensor:
    """Round fp32 to TF32 (10 mantissa bits), nearest, ties away: what cvt.rna.tf32.f32 does."""
    bits = x.view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


def _rand(kind: str, *shape: int, dtype=torch.float32) -> torch.Tensor:  # noqa: ANN001
    return (torch.rand(*shape) if kind == "rand" else torch.randn(*shape)).to(dtype)


def _softmax_exp2(x: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    p = torch.exp2((xf - xf.amax(-1, keepdim=True)) * LOG2E)
    return (p / _seq_sum(p, 128)[..., None]).to(x.dtype)


# ------------------------------------------------------------------------------------------------ honest variants
# each: (seed, size) -> (got, expected, low, tf32)


def h_sum_fp32(seed, n, kind="randn"):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    x = _rand(kind, 64, n)
    return _seq_sum(x), x.double().sum(-1), x.sum(-1), False


def h_matmul_fp32(seed, k, kind="randn"):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    a, b = _rand(kind, 96, k), _rand(kind, k, 80)
    return _seq_matmul(a, b), a.double() @ b.double(), a @ b, False


def h_matmul_half(seed, k, dtype=torch.float16, kind="randn"):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    a, b = _rand(kind, 64, k, dtype=dtype), _rand(kind, k, 48, dtype=dtype)
    return _seq_matmul(a, b, 64).to(dtype), a.double() @ b.double(), a @ b, False


def h_linear_gelu_half(seed, k, dtype=torch.bfloat16):  # noqa: ANN001, ANN201
    """Rounds the matmul to the output dtype once before the bias and GELU, as an unfused kernel pair would."""
    torch.manual_seed(seed)
    a, w, bias = (
        torch.randn(64, k, dtype=dtype),
        (torch.randn(k, 96) / math.sqrt(k)).to(dtype),
        torch.randn(96).to(dtype),
    )
    y = _seq_matmul(a, w, 64).to(dtype).float() + bias.float()
    got = F.gelu(y).to(dtype)
    return got, F.gelu(a.double() @ w.double() + bias.double()), F.gelu(a @ w + bias), False


def h_softmax(seed, n, dtype=torch.float32, kind="randn"):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    x = _rand(kind, 32, n, dtype=dtype)
    return _softmax_exp2(x), torch.softmax(x.double(), -1), torch.softmax(x, -1), False


def h_layernorm(seed, n, dtype=torch.float32):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    x = (torch.randn(32, n) * 3 + 1).to(dtype)
    xf = x.float()
    mean = _seq_sum(xf, 256)[:, None] / n
    var = _seq_sum((xf - mean) ** 2, 256)[:, None] / n
    got = ((xf - mean) * torch.rsqrt(var + 1e-5)).to(dtype)
    return got, F.layer_norm(x.double(), (n,)), F.layer_norm(x, (n,)), False


def h_exp_fp32(seed, n):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    x = torch.randn(n) * 4
    return torch.exp2(x * LOG2E), torch.exp(x.double()), torch.exp(x), False


def h_tf32_matmul(seed, k):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    a, b = torch.randn(64, k), torch.randn(k, 64)
    return _seq_matmul(_tf32(a), _tf32(b), 32), a.double() @ b.double(), a @ b, True


def h_tf32_matmul_truncated(seed, k):  # noqa: ANN001, ANN201
    """Tensor cores that drop the low 13 mantissa bits instead of rounding: a biased error."""
    torch.manual_seed(seed)
    a, b = torch.randn(64, k), torch.randn(k, 64)
    trunc = lambda x: (x.view(torch.int32) & ~0x1FFF).view(torch.float32)  # noqa: E731
    return _seq_matmul(trunc(a), trunc(b), 32), a.double() @ b.double(), a @ b, True


def h_matvec_bf16(seed, k, kind="rand"):  # noqa: ANN001, ANN201
    torch.manual_seed(seed)
    w, x = _rand(kind, 256, k, dtype=torch.bfloat16), _rand(kind, k, 1, dtype=torch.bfloat16)
    return _seq_matmul(w, x, 64).to(torch.bfloat16), w.double() @ x.double(), w @ x, False


HONEST = {
    "sum_fp32_randn": lambda s, n: h_sum_fp32(s, n),
    "sum_fp32_rand": lambda s, n: h_sum_fp32(s, n, "rand"),
    "matmul_fp32_randn": lambda s, n: h_matmul_fp32(s, n),
    "matmul_fp32_rand": lambda s, n: h_matmul_fp32(s, n, "rand"),
    "matmul_fp16": lambda s, n: h_matmul_half(s, n),
    "matmul_bf16": lambda s, n: h_matmul_half(s, n, torch.bfloat16),
    "matmul_bf16_rand": lambda s, n: h_matmul_half(s, n, torch.bfloat16, "rand"),
    "linear_gelu_bf16": lambda s, n: h_linear_gelu_half(s, n),
    "linear_gelu_fp16": lambda s, n: h_linear_gelu_half(s, n, torch.float16),
    "softmax_fp32": lambda s, n: h_softmax(s, n),
    "softmax_fp32_rand": lambda s, n: h_softmax(s, n, kind="rand"),
    "softmax_fp16": lambda s, n: h_softmax(s, n, torch.float16),
    "softmax_bf16": lambda s, n: h_softmax(s, n, torch.bfloat16),
    "layernorm_fp32": lambda s, n: h_layernorm(s, n),
    "layernorm_bf16": lambda s, n: h_layernorm(s, n, torch.bfloat16),
    "exp_via_exp2_fp32": lambda s, n: h_exp_fp32(s, n),
    "tf32_matmul": lambda s, n: h_tf32_matmul(s, n),
    "tf32_matmul_truncated": lambda s, n: h_tf32_matmul_truncated(s, n),
    "matvec_bf16": lambda s, n: h_matvec_bf16(s, n),
    "matvec_bf16_randn": lambda s, n: h_matvec_bf16(s, n, "randn"),
}
SIZES = (1024, 8192)
SEEDS = (0, 1, 2)


# ------------------------------------------------------------------------------------------------ attacks
# each: (seed, size) -> (got, expected, low, tf32, words expected in the message)


def a_softmax_no_rowsum(seed, n=16384):  # noqa: ANN001, ANN201
    """Skips the row sum and divides by the column count instead (close to right for inputs in [0, 1))."""
    torch.manual_seed(seed)
    x = torch.rand(16, n)
    got = torch.exp(x - x.amax(-1, keepdim=True)) / n
    return got, torch.softmax(x.double(), -1), torch.softmax(x, -1), False, "x the reference"


def a_zeros_79(seed, n):  # noqa: ANN001, ANN201
    """Writes only the first 21% of the output (grid too small)."""
    _, e, lo, _ = h_softmax(seed, n, kind="rand")
    got = lo.clone().reshape(-1)
    got[int(0.21 * got.numel()) :] = 0
    return got.reshape(lo.shape), e, lo, False, "exactly 0"


def a_matvec_drop_k(seed, k, kind="rand"):  # noqa: ANN001, ANN201
    """bf16 matvec whose K loop stops 2.7% short."""
    _, e, lo, _ = h_matvec_bf16(seed, k, kind)
    torch.manual_seed(seed)
    w, x = _rand(kind, 256, k, dtype=torch.bfloat16), _rand(kind, k, 1, dtype=torch.bfloat16)
    kk = k - round(0.027 * k)
    return _seq_matmul(w[:, :kk], x[:kk], 64).to(torch.bfloat16), e, lo, False, "relative error norm"


def a_constant(seed, n):  # noqa: ANN001, ANN201
    got, e, lo, _ = h_matmul_fp32(seed, n)
    return torch.full_like(lo, float(lo.mean())), e, lo, False, "constant"


def a_small_garbage(seed, n):  # noqa: ANN001, ANN201
    """The reference is ~1e-5 everywhere; the output is noise of that size."""
    torch.manual_seed(seed)
    x = torch.randn(64, n) * 1e-5
    return torch.randn(64, n) * 1e-5, torch.tanh(x.double()), torch.tanh(x), False, "beyond the allowed error"


def a_small_garbage_mixed(seed, n):  # noqa: ANN001, ANN201
    """Half of each row is ~1, half ~1e-5; the small half is replaced by noise of its size."""
    torch.manual_seed(seed)
    x = torch.randn(64, n)
    x[:, n // 2 :] *= 1e-5
    got = torch.tanh(x)
    got[:, n // 2 :] = torch.randn(64, n - n // 2) * 1e-5
    return got, torch.tanh(x.double()), torch.tanh(x), False, "beyond the allowed error"


def a_bias_fp32(seed, n):  # noqa: ANN001, ANN201
    got, e, lo, _ = h_matmul_fp32(seed, n)
    return got * (1 + 1e-3), e, lo, False, "x the reference"


def a_fp16_exp_overflow(seed, n):  # noqa: ANN001, ANN201
    """fp16 softmax without subtracting the row max: exp overflows to inf, then inf/inf = NaN."""
    torch.manual_seed(seed)
    x = (torch.randn(16, n) * 4).to(torch.float16)
    p = torch.exp(x.float()).to(torch.float16)  # exp rounded to fp16 before the sum: overflows above 11.09
    got = (p.float() / p.float().sum(-1, keepdim=True)).to(torch.float16)
    return got, torch.softmax(x.double(), -1), torch.softmax(x, -1), False, "NaN/Inf"


ATTACKS = {
    "softmax_no_rowsum": lambda s, n: a_softmax_no_rowsum(s),
    "zeros_79pct": a_zeros_79,
    "matvec_bf16_drop_2.7pct_k": a_matvec_drop_k,
    "matvec_bf16_drop_2.7pct_k_randn": lambda s, n: a_matvec_drop_k(s, n, "randn"),
    "constant": a_constant,
    "small_garbage": a_small_garbage,
    "small_garbage_mixed": a_small_garbage_mixed,
    "bias_1e-3_fp32": a_bias_fp32,
    "fp16_exp_overflow": a_fp16_exp_overflow,
}


def ratio(c) -> float:  # noqa: ANN001
    if "nonfinite_mismatches" in c.stats:
        return math.inf
    return max(c.stats.get("max_err_ratio", 0.0), c.stats.get("norm_ratio", 0.0))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", sorted(HONEST))
def test_honest_variants_pass(name: str, size: int, seed: int) -> None:
    got, e, lo, tf32 = HONEST[name](seed, size)
    c = compare_outputs(got, e, lo, tf32=tf32)
    assert c.ok, f"{name}: {c.message}\n{c.evidence}"
    assert ratio(c) < 1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attacks_fail_with_clear_message(name: str, size: int, seed: int) -> None:
    got, e, lo, tf32, words = ATTACKS[name](seed, size)
    c = compare_outputs(got, e, lo, tf32=tf32)
    assert not c.ok and c.kind == "mismatch", name
    assert words in c.message + c.evidence, f"{name}: {c.message}\n{c.evidence}"
    assert c.message.startswith("output 0: ")


def test_tf32_matmul_needs_the_flag() -> None:
    got, e, lo, _ = h_tf32_matmul(0, 4096)
    assert compare_outputs(got, e, lo, tf32=True).ok
    c = compare_outputs(got, e, lo)
    assert not c.ok


def test_two_argument_form_old_callers_and_determinism() -> None:
    """Without `low`, expected is in the output dtype: identical and honest outputs pass, attacks still fail."""
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        got, e, lo, _ = h_matmul_half(0, 2048, dtype)
        assert compare_outputs(lo, lo.clone()).ok
        assert compare_outputs(got, lo).ok, compare_outputs(got, lo).message
        assert not compare_outputs(torch.zeros_like(lo), lo).ok
        assert not compare_outputs(got * 1.05, lo).ok
    got, e, lo, _, _ = a_matvec_drop_k(0, 8192)
    assert not compare_outputs(got, lo).ok
    got, e, lo, _, _ = a_softmax_no_rowsum(0)
    assert not compare_outputs(got, lo).ok
    # a reference that is not deterministic beyond rounding (dropout) is not "the same"
    torch.manual_seed(0)
    x = torch.randn(256, 256)
    assert not compare_outputs(F.dropout(x, 0.1), F.dropout(x, 0.1)).ok


def test_exact_and_structure() -> None:
    idx = torch.tensor([1, 2, 3])
    assert compare_outputs(idx, idx.clone()).ok
    c = compare_outputs(torch.tensor([1, 2, 4]), idx)
    assert not c.ok and "compared exactly" in c.message and "(2,)" in c.evidence
    # an argmax near a tie may follow either reference
    assert compare_outputs(torch.tensor([1, 5, 3]), idx, torch.tensor([1, 5, 3])).ok
    assert compare_outputs(torch.tensor([True, False]), torch.tensor([True, False])).ok
    assert (
        compare_outputs(torch.ones(3), torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float16)).kind
        == "dtype"
    )
    assert compare_outputs(torch.ones(3), torch.ones(4)).kind == "shape"
    assert compare_outputs([torch.ones(3)], [torch.ones(3), torch.ones(3)]).kind == "structure"
    assert compare_outputs(3, torch.ones(3)).kind == "structure"
    assert compare_outputs(torch.empty(0), torch.empty(0, dtype=torch.float64), torch.empty(0)).ok


def test_python_scalars() -> None:
    assert compare_outputs(3, 3).ok and not compare_outputs(3, 4).ok
    assert compare_outputs(True, True).ok and not compare_outputs(1, True).ok
    assert compare_outputs(1.0 + 1e-7, 1.0).ok
    assert not compare_outputs(1.001, 1.0).ok
    assert compare_outputs(torch.tensor(2.5), 2.5).ok
    assert compare_outputs(float("nan"), float("nan")).ok and not compare_outputs(1.0, float("inf")).ok
    assert compare_outputs((torch.ones(2), 7), (torch.ones(2), 7)).ok
    assert compare_outputs(1.0 + 1e-5, 1.0, 1.0 + 1e-5).ok  # within the low reference's own error


def test_nonfinite_follows_the_low_reference() -> None:
    e = torch.tensor([1.0, 70000.0, float("nan")], dtype=torch.float64)
    lo = torch.tensor([1.0, float("inf"), float("nan")], dtype=torch.float16)
    assert compare_outputs(lo.clone(), e, lo).ok  # overflow in fp16 is what PyTorch does: the candidate must too
    c = compare_outputs(torch.tensor([1.0, 65504.0, float("nan")], dtype=torch.float16), e, lo)
    assert not c.ok and "NaN/Inf" in c.message and "(1,)" in c.evidence
    c = compare_outputs(torch.tensor([float("inf"), float("inf"), float("nan")], dtype=torch.float16), e, lo)
    assert not c.ok and "NaN/Inf" in c.message


def test_overrides() -> None:
    got, e, lo, _ = h_matmul_fp32(0, 1024)
    assert not compare_outputs(got * 1.01, e, lo).ok
    assert compare_outputs(got * 1.01, e, lo, rtol=0.02).ok
    c = compare_outputs(got + 0.5, e, lo, atol=1.0)  # atol is absolute, in the output's units
    assert c.ok, c.message
    assert not compare_outputs(got + 0.5, e, lo, atol=0.1).ok


def test_chunked_matches_single_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk boundaries (with the envelope's overlap) change nothing: same verdict, same counts."""
    import kernelagent.verify.compare as compare_module

    got, e, lo, _, _ = a_zeros_79(0, 1024)
    got2, e2, lo2, _ = h_layernorm(1, 1024)
    one = [compare_outputs(got, e, lo), compare_outputs(got2, e2, lo2)]
    monkeypatch.setattr(compare_module, "CHUNK", 4096)
    many = [compare_outputs(got, e, lo), compare_outputs(got2, e2, lo2)]
    for a, b in zip(one, many, strict=True):
        assert a.ok == b.ok and a.message == b.message
        for key in a.stats:
            assert a.stats[key] == pytest.approx(b.stats[key], rel=1e-9), key
    monkeypatch.setattr(compare_module, "CHUNK", 1000)  # a 1-D view with element chunks
    c = compare_outputs(got.reshape(-1), e.reshape(-1), lo.reshape(-1))
    assert not c.ok and c.message.split(";")[0].split(" of ")[0] == one[0].message.split(" of ")[0]


def test_flatten_outputs_unchanged() -> None:
    assert flatten_outputs([1, (2, [3])]) == [1, 2, 3]


def measure() -> tuple[dict, dict]:
    honest = {
        name: max(ratio(compare_outputs(*make(s, n)[:3], tf32=make(s, n)[3])) for s in SEEDS for n in SIZES)
        for name, make in HONEST.items()
    }
    attacks = {}
    for name, make in ATTACKS.items():
        values = []
        for s in SEEDS:
            for n in SIZES:
                got, e, lo, tf32, _ = make(s, n)
                values.append(ratio(compare_outputs(got, e, lo, tf32=tf32)))
        attacks[name] = min(values)
    return honest, attacks


if __name__ == "__main__":
    honest, attacks = measure()
    for name, r in sorted(honest.items(), key=lambda kv: -kv[1]):
        print(f"honest {name:32s} worst ratio {r:.3g}")
    for name, r in sorted(attacks.items(), key=lambda kv: kv[1]):
        print(f"attack {name:32s} best ratio {r:.3g}")
