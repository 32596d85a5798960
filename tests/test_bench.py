"""The performance library on CPU: launch-parameter discovery and rewriting, roofline arithmetic, bytes/FLOPs
counting, and that nothing is ever timed without a GPU. GPU timing itself is proven by benchmarks/perf_pipeline.py."""

from __future__ import annotations

import ast
import difflib
import io
import shutil
import tokenize
from pathlib import Path

import pytest
import torch

from kernelagent.bench import (
    SKIPPED,
    autotune,
    ceilings,
    roofline,
    speedups,
    time_candidate,
    time_candidates,
    time_reference,
    tunable_parameters,
    variants,
)
from kernelagent.bench.roofline import traffic as _traffic
from kernelagent.verify.verifier import prepare_reference

ROOT = Path(__file__).resolve().parents[1]
HONEST = ROOT / "tests" / "corpus" / "honest"
PROBLEMS = ROOT / "tests" / "corpus" / "problems"
SEEDS = ROOT / "benchmarks" / "problems"


def honest(name: str) -> str:
    return (HONEST / f"{name}.py").read_text()


# ----------------------------------------------------------------------------------------------------------------
# tunable_parameters: what each honest kernel exposes, however it spells its launch


def test_literal_keyword_and_default_num_warps():
    params = tunable_parameters(honest("elementwise_add__block1024"))
    assert params == {"BLOCK_SIZE": [256, 512, 1024, 2048, 4096, 8192], "num_warps": [2, 4, 8]}


def test_tuple_assigned_locals_in_a_dot_kernel_with_a_loop():
    params = tunable_parameters(honest("linear_bias_relu__tiled16"))
    tiles = [16, 32, 64, 128]  # tl.dot needs at least 16; up to 8x the current tile
    assert params == {"BLOCK_M": tiles, "BLOCK_N": tiles, "BLOCK_K": tiles, "num_warps": [2, 4, 8],
                      "num_stages": [2, 3, 4]}


def test_module_constants_and_self_attributes_resolve_to_their_literals():
    assert set(tunable_parameters(honest("linear_bias_relu__blocks32"))) == {"BM", "BN", "BK", "num_warps",
                                                                            "num_stages"}
    params = tunable_parameters(honest("row_sum__looped"))
    assert params["BLOCK_M"] == [4, 8, 16, 32, 64, 128] and params["BLOCK_N"][0] == 16


def test_computed_values_are_not_tunable():
    # BLOCK_SIZE = triton.next_power_of_2(n_cols) must cover the row; min(128, ...) is an expression.
    assert tunable_parameters(honest("softmax__row_per_program")) == {"num_warps": [2, 4, 8]}
    assert tunable_parameters(honest("elementwise_add__heuristics_2d")) == {"num_warps": [2, 4, 8]}


def test_two_kernels_sharing_a_keyword_get_qualified_keys():
    params = tunable_parameters((SEEDS / "sum_all_seed.py").read_text())
    assert {"BLOCK_SIZE", "ITERS", "partial_sums_kernel.num_warps", "final_sum_kernel.num_warps"} <= set(params)


def test_autotuned_kernels_and_ambiguous_names_are_left_alone():
    code = honest("elementwise_add__block1024")
    autotuned = code.replace(
        "@triton.jit", '@triton.autotune(configs=[triton.Config({}, num_warps=4)], key=["n_elements"])\n@triton.jit'
    )
    assert tunable_parameters(autotuned) == {}
    assert variants(autotuned) == []
    twice = honest("relu__basic").replace("BLOCK_SIZE = 512", "BLOCK_SIZE = 512\n        BLOCK_SIZE = 256")
    assert "BLOCK_SIZE" not in tunable_parameters(twice)
    assert tunable_parameters("def broken(:\n") == {}


# ----------------------------------------------------------------------------------------------------------------
# variants: every rewrite parses, changes only the tuned literals, and round-trips through its label


@pytest.mark.parametrize("path", sorted(HONEST.glob("*.py")) + sorted(SEEDS.glob("*_seed.py")), ids=lambda p: p.stem)
def test_variants_change_only_literals(path):
    code = path.read_text()
    found = variants(code, max_variants=24)
    assert len(found) <= 24
    assert len({label for label, _ in found}) == len(found)
    for label, rewritten in found:
        ast.parse(rewritten)
        _assert_only_literals_changed(code, rewritten)
        expected = dict(item.split("=") for item in label.split(","))
        _assert_values_now(rewritten, expected)


def test_matmul_seed_variants_reach_large_tiles():
    labels = [label for label, _ in variants((SEEDS / "linear_bias_relu_seed.py").read_text())]
    assert any("BLOCK_M=128,BLOCK_N=128" in label for label in labels)
    # 128x128 fp32 accumulators on one or two warps would spill: never proposed.
    assert not any("BLOCK_M=128,BLOCK_N=128" in label and "num_warps=1" in label for label in labels)


def test_inserted_launch_options_keep_the_call_style():
    code = honest("linear_bias_relu__tiled16")
    rewritten = dict(variants(code))["num_stages=4"]
    changed = [line for line in difflib.ndiff(code.splitlines(), rewritten.splitlines()) if line[:1] in "+-"]
    assert changed == [
        "-             BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,",
        "+             BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, num_stages=4,",
    ]


def _assert_only_literals_changed(before: str, after: str) -> None:
    old, new = _tokens(before), _tokens(after)
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        assert op in ("replace", "insert"), (op, old[i1:i2], new[j1:j2])
        # Old side: only numbers go away. New side: numbers, plus any inserted `num_warps=N,` keywords.
        assert all(t[0] == tokenize.NUMBER for t in old[i1:i2]), old[i1:i2]
        inserted = {t[1] for t in new[j1:j2] if t[0] != tokenize.NUMBER}
        assert inserted <= {",", "=", "num_warps", "num_stages"}, new[j1:j2]


def _assert_values_now(code: str, expected: dict[str, str]) -> None:
    """Re-reading the rewritten code finds each labelled parameter at its new value (the sweep centres on it)."""
    now = tunable_parameters(code)
    for key, value in expected.items():
        assert int(value) in now[key]


def _tokens(code: str) -> list[tuple[int, str]]:
    skip = {tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(code).readline) if t.type not in skip]


# ----------------------------------------------------------------------------------------------------------------
# roofline and speed-ups: plain arithmetic

CEILINGS = {"gpu": "test", "copy_gbps": 3000.0, "matmul_tflops": {"float32": 50.0, "tf32": 400.0, "float16": 800.0}}


def test_roofline_memory_bound():
    r = roofline(2.0, bytes_=3_000_000_000, flops=1_000_000, ceilings=CEILINGS, dtype="float32")
    assert r["bound"] == "memory"
    assert r["floor_ms"] == pytest.approx(1.0)
    assert r["fraction"] == pytest.approx(0.5)
    assert r["achieved_gbps"] == pytest.approx(1500.0)


def test_roofline_compute_bound_uses_the_dtype_rate():
    flops = 2 * 4096**3
    r = roofline(0.5, bytes_=96 * 2**20, flops=flops, ceilings=CEILINGS, dtype="float16")
    assert r["bound"] == "compute"
    assert r["floor_ms"] == pytest.approx(flops / 800e12 * 1e3)
    assert r["achieved_tflops"] == pytest.approx(flops / 0.5e-3 / 1e12)
    unknown = roofline(0.5, bytes_=1, flops=flops, ceilings=CEILINGS, dtype="float8_e4m3fn")
    assert unknown["floor_ms"] == pytest.approx(flops / 50e12 * 1e3)  # falls back to the fp32 rate
    with pytest.raises(ValueError):
        roofline(0.0, bytes_=1, flops=1, ceilings=CEILINGS, dtype="float32")


def test_speedups():
    assert speedups(0.5, {"eager_ms": 1.0, "compile_ms": 0.75}) == {"speedup_vs_eager": 2.0, "speedup_vs_compile": 1.5}
    assert speedups(0.5, {"eager_ms": 1.0, "compile_ms": None})["speedup_vs_compile"] is None


# ----------------------------------------------------------------------------------------------------------------
# bytes and FLOPs of the reference


def test_traffic_of_a_linear_layer_counts_2mnk_flops_and_each_tensor_once():
    m, k, n = 48, 64, 32
    model = torch.nn.Linear(k, n)
    x = torch.randn(m, k)
    with torch.no_grad():
        out = model(x)
        traffic = _traffic(model, [x], out)
    assert traffic["flops"] == 2 * m * n * k
    assert traffic["flops_source"] == "flop_counter"
    assert traffic["bytes"] == 4 * (m * k + n * k + n + m * n)


def test_traffic_of_an_elementwise_op_uses_the_numel_lower_bound():
    class Add(torch.nn.Module):
        def forward(self, a, b):
            return a + b

    a, b = torch.randn(1000), torch.randn(1000)
    traffic = _traffic(Add(), [a, b], a + b)
    assert traffic == {"bytes": 3 * 4000, "flops": 2000, "flops_source": "numel_lower_bound"}


# ----------------------------------------------------------------------------------------------------------------
# No GPU, no numbers


@pytest.fixture(scope="module")
def cpu_harness(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    return prepare_reference(
        reference_source=(PROBLEMS / "linear_bias_relu.py").read_text(),
        harness_dir=folder / "harness",
        device="cpu",
        draws=1,
        sizes={},
        precision="spec",
        seed=7,
        timeout_s=120,
        cache_dir=folder / "cache",
    )


def test_timing_on_cpu_is_skipped_never_a_number(cpu_harness, tmp_path):
    code = honest("linear_bias_relu__tiled16")
    results = [
        time_reference(cpu_harness, tmp_path / "ref"),
        time_candidate(code, cpu_harness, tmp_path / "one"),
        *time_candidates([code, code], cpu_harness, tmp_path / "many"),
        autotune(code, cpu_harness, tmp_path / "tune", verify=lambda _: True),
    ]
    for result in results:
        assert result == SKIPPED
    assert not (tmp_path / "one").exists()  # refused before any child ran


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
def test_ceilings_on_cpu_are_skipped(tmp_path):
    assert "skipped" in ceilings(tmp_path / "ceilings.json")
    assert not (tmp_path / "ceilings.json").exists()


def test_child_protocol_with_the_test_clock(cpu_harness, tmp_path):
    """The sandboxed child, driven on CPU with a host clock (marked, test-only): isolation between candidates."""
    harness = {**cpu_harness, "device": "cuda", "_test_clock": "host"}
    good = honest("linear_bias_relu__tiled16")
    raises = good.replace("        M, K = x.shape\n", "        M, K = x.shape\n        assert M < 0, 'boom'\n")
    cheats = honest("elementwise_add__block1024").replace("import torch\n", "import os\nimport torch\n")
    results = time_candidates([good, raises, cheats, good], harness, tmp_path / "batch", labels=list("abcd"))
    assert [r["label"] for r in results] == list("abcd")
    assert results[0]["clock"] == "host" and results[0]["launches_per_call"] == 1 and results[0]["reps"] >= 8
    assert len(results[0]["samples_ms"]) == results[0]["messages"] and results[0]["checked_calls"] > results[0]["reps"]
    assert "boom" in results[1]["error"]
    assert results[2]["error"].startswith("not timed: forbidden_import")
    assert "ms" in results[3]
    reference = time_reference(harness, tmp_path / "ref")
    assert reference["flops"] == 2 * 48 * 32 * 64 and reference["dtype"] == "float32"


def test_benchmark_node_times_every_seed_in_one_child_and_never_twice(cpu_harness, tmp_path):
    from kernelagent.nodes.benchmark import measure_all
    from kernelagent.runs.store import RunStore

    harness = {**cpu_harness, "device": "cuda", "_test_clock": "host"}
    store = RunStore(tmp_path / "run")
    paths = [store.write_text(f"seed{i}.py", honest("linear_bias_relu__tiled16")) for i in range(2)]
    items = [(f"seed{i}/round0", str(path)) for i, path in enumerate(paths)]
    reference = time_reference(harness, tmp_path / "ref")
    limits = {"copy_gbps": 1000.0, "matmul_tflops": {"float32": 50.0}}  # given ceilings: roofline needs some

    first = measure_all(store, items, harness, reference, limits)
    assert [r["label"] for r in first] == ["seed0/round0", "seed1/round0"]
    assert all(r["ms"] > 0 and r["roofline"]["fraction"] > 0 and r["speedup_vs_eager"] is not None for r in first)
    batches = sorted(p.name for p in store.path("timing").iterdir() if p.is_dir())
    assert batches == ["batch_seed0_round0_seed1_round0"]  # one child for both
    shutil.rmtree(store.path("timing", batches[0]))
    assert measure_all(store, items, harness, reference, limits) == first  # a resumed run reads, never re-times
    assert not store.path("timing", batches[0]).exists()


# ----------------------------------------------------------------------------------------------------------------
# The sweep's decisions, with a fake GPU clock: fastest verified variant wins; noise never replaces the seed


def _fake_timer(monkeypatch, times: dict[str, float], seen: list[str], noise: float = 0.01) -> None:
    """Per-round medians spread by +-noise around each label's time; the confirming call is not counted in seen."""
    import kernelagent.bench.timing as timing

    def fake(codes, harness, workdir, *, labels, **_):  # noqa: ANN001, ANN003, ANN202
        if Path(workdir).name != "confirm":
            seen.extend(labels)
        out = []
        for j, label in enumerate(labels):
            ms = times.get(label, 2.0)
            rounds = [ms * (1 + noise * (((i + 3 * j) * 7) % 5 - 2) / 2) for i in range(7)]
            out.append({"ms": ms, "label": label, "rounds_ms": rounds})
        return out

    monkeypatch.setattr(timing, "time_candidates", fake)


def test_autotune_keeps_the_fastest_verified_variant(monkeypatch, tmp_path):
    seen: list[str] = []
    _fake_timer(monkeypatch, {"seed": 1.0, "BLOCK_SIZE=2048": 0.5, "BLOCK_SIZE=4096": 0.6}, seen)
    verified: list[str] = []

    def verify(code: str) -> dict:
        verified.append(code)
        return {"passed": "BLOCK_SIZE=2048" not in code, "reason": "fake"}  # the fastest one is wrong

    code = honest("elementwise_add__block1024")
    found = autotune(code, {"device": "cuda"}, tmp_path, verify=verify, max_variants=8)
    assert seen[0] == "seed" and len(set(seen)) == len(seen)  # the seed first; nothing timed twice
    assert found["label"] == "BLOCK_SIZE=4096" and found["improved"] and found["seed_ms"] == 1.0
    assert found["confirm"]["clears"] and found["confirm"]["how"] == "paired"
    assert [v["passed"] for v in found["verified"]] == [False, True]
    assert "BLOCK_SIZE=4096" in found["code"] and len(verified) == 2


def test_autotune_keeps_the_seed_when_the_confirming_interval_overlaps(monkeypatch, tmp_path):
    _fake_timer(monkeypatch, {"seed": 1.0, "BLOCK_SIZE=4096": 0.97}, [], noise=0.08)  # 3% faster, +-8% noise
    code = honest("elementwise_add__block1024")
    found = autotune(code, {"device": "cuda"}, tmp_path, verify=lambda _: True, max_variants=8)
    assert found["label"] == "seed" and not found["improved"] and found["code"] == code
    assert not found["confirm"]["clears"] and "did not clear the seed" in found["reason"]


def test_autotune_ignores_gains_within_noise(monkeypatch, tmp_path):
    _fake_timer(monkeypatch, {"seed": 1.0, "num_warps=8": 0.995}, [])
    code = honest("elementwise_add__block1024")
    found = autotune(code, {"device": "cuda"}, tmp_path, verify=lambda _: pytest.fail("nothing to verify"))
    assert found["label"] == "seed" and not found["improved"] and found["code"] == code
