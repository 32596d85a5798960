#!/usr/bin/env bash
# On the GPU machine: the verifier corpus on CUDA, then one whole pipeline run on CUDA (scripted endpoint, so the
# figures are reproducible): verification, benchmark, autotune, one LLM optimisation round, select.
#   carry .whl (../shared/device/wheels.sh matplotlib), then: bash benchmarks/gpu_e2e.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" | tee -a "$OUT/gpu.txt"

echo "== corpus on cuda"
python3 tests/corpus_runner.py --device cuda --workers 4 --timeout 120 --out "$OUT/corpus-gpu.md" > "$OUT/corpus.log" 2>&1
echo "corpus exit $?"; grep -E "False passes|❌" "$OUT/corpus-gpu.md"

echo "== pipeline on cuda"
python3 -m kernelagent.llm.scripted_server --script examples/gpu/script.json --port 0 > /tmp/llm.url 2>/tmp/llm.err &
for _ in $(seq 50); do grep -q SCRIPTED_LLM_URL /tmp/llm.url && break; sleep 0.2; done
export OPENAI_BASE_URL=$(sed -n 's/SCRIPTED_LLM_URL=//p' /tmp/llm.url) OPENAI_API_KEY=scripted KERNELAGENT_MODEL=scripted-model
time python3 cli.py run examples/gpu/softmax_large.md --device cuda --seeds 2 --rounds 2 --collect-all \
  --optimise-rounds 1 --runs-dir /tmp/runs > "$OUT/pipeline.log" 2>&1
echo "pipeline exit $?"; tail -5 "$OUT/pipeline.log"
run=$(ls -d /tmp/runs/*/ | head -1)
cp "$run/result.json" "$OUT/result.json"; cp "$run/report.html" "$OUT/report.html"; cp "$run/report.md" "$OUT/report.md"
python3 - "$OUT/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = r["timings"]
print("status", r["status"], "kernel_from", r["kernel_from"])
if "skipped" in t: print("timing skipped:", t["skipped"]); sys.exit()
print(f"eager {t['eager_ms']:.4f} ms  compile {t['compile_ms']}  gpu {t['gpu']}  ceilings {t['ceilings']}")
for c in t["candidates"]: print(f"  {c['label']:<48} {c['ms']} ms  x{c['speedup_vs_eager']} eager  x{c['speedup_vs_compile']} compile  roofline {c['roofline_fraction']}")
print("autotune", t["autotune"]); print("optimise", t["optimise_rounds"]); print("best", t["best"])
PY
