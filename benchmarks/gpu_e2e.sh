#!/usr/bin/env bash
# On the GPU machine, in one call (carry .whl made by ../shared/device/wheels.sh matplotlib):
#   1. the sandbox, warm-pool and slot tests (forked children initialise CUDA; a real launch works)
#   2. a whole pipeline run on CUDA against a scripted endpoint: fp16 linear+bias+ReLU from a deliberately
#      small-tiled seed -> verify -> benchmark -> autotune -> one LLM optimisation round -> select
#   3. per-candidate verification latency, cold subprocess vs warm worker (the shorter step first)
#   4. the verifier corpus on CUDA (warm workers)
#   bash benchmarks/gpu_e2e.sh [softmax|linear|verify]   # softmax / linear: that pipeline run alone;
#                                                        # verify: steps 1, 3 and 4 only (the verifier's GPU figures)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | grep -v "already exists"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"

start_llm() {  # a scripted endpoint, so the run is reproducible; it is labelled as such in the logs
  python3 -m kernelagent.llm.scripted_server --script "$1" --port 0 > /tmp/llm.url 2>/tmp/llm.err &
  for _ in $(seq 50); do grep -q SCRIPTED_LLM_URL /tmp/llm.url && break; sleep 0.2; done
  export OPENAI_BASE_URL=$(sed -n 's/SCRIPTED_LLM_URL=//p' /tmp/llm.url) OPENAI_API_KEY=scripted KERNELAGENT_MODEL=scripted-model
}
summarise() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["timings"]
print("status", r["status"], "| kernel from", r["kernel_from"])
if "skipped" in t: print("timing skipped:", t["skipped"]); sys.exit()
print(f"eager {t['eager_ms']:.4f} ms | torch.compile {t['compile_ms']} ms | {t['gpu']}")
for c in t["candidates"]: print(f"  {c['label']:<60} {c['ms']:.4f} ms  x{c['speedup_vs_eager']} eager  x{c['speedup_vs_compile']} compile  roofline {c['roofline_fraction']:.2f}")
print("autotune:", t["autotune"]); print("optimise:", t["optimise_rounds"])
PY
}
pipeline() {  # spec script run-options...
  local spec=$1 script=$2; shift 2
  start_llm "$script"
  time python3 cli.py run "$spec" --device cuda --runs-dir /tmp/runs "$@" > "$OUT/pipeline.log" 2>&1
  echo "pipeline exit $?"; tail -4 "$OUT/pipeline.log"
  run=$(ls -td /tmp/runs/*/ | head -1)
  cp "$run/result.json" "$run/report.html" "$run/report.md" "$OUT/"
  summarise "$OUT/result.json"
}

linear_pipeline() {
  pipeline benchmarks/problems/linear_bias_relu.py examples/gpu/script_linear.json --precision fp16 --seeds 1 --rounds 1 \
    --optimise-rounds 1 --draws 2
}
if [ "${1:-}" = softmax ]; then
  pipeline examples/gpu/softmax_large.md examples/gpu/script.json --seeds 2 --rounds 2 --collect-all --optimise-rounds 1
  exit 0
fi
if [ "${1:-}" = linear ]; then linear_pipeline; exit 0; fi
echo "== 1. sandbox, warm pool and GPU slots on the GPU machine (the CUDA-only test included)"
python3 -m pytest -q tests/test_warm.py tests/test_slots.py tests/test_sandbox.py -p no:cacheprovider -rs 2>&1 | tee "$OUT/sandbox-tests.log" | tail -6
echo "== 2. pipeline on cuda: fp16 linear + bias + ReLU"
[ "${1:-}" = verify ] || linear_pipeline
echo "== 3. verification latency"
python3 benchmarks/verify_latency.py --device cuda --runs 5 2>&1 | tail -8 | tee "$OUT/latency.md"
echo "== 4. corpus on cuda"
python3 tests/corpus_runner.py --device cuda --workers 4 --timeout 120 --out "$OUT/corpus-gpu.md" > "$OUT/corpus.log" 2>&1
echo "corpus exit $?"; grep -E "False passes|❌" "$OUT/corpus-gpu.md"
