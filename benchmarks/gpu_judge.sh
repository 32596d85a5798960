#!/usr/bin/env bash
# One device call for the judge on the GPU machine (carry .whl, .kb = a copy of ../shared/kernelbench, and
# .kbresults with an earlier call's kernelbench.jsonl to continue it):
#   bash benchmarks/gpu_judge.sh corpus latency kernelbench
# Each step writes its full log under $OUT; the whole call is kept inside the device tool's 600 s limit.
set -u
started=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for step in "$@"; do
  case $step in
    smoke)  # one honest candidate through the real judge: stop the call here (and save device time) if it fails
      timeout 120 python3 tests/attack_runner.py tests/corpus/honest/softmax__multi_row.py tests/corpus/problems/softmax.py \
        --device cuda > "$OUT/smoke.json" 2>&1
      grep -q '"passed": true' "$OUT/smoke.json" || { echo "smoke failed"; head -c 3000 "$OUT/smoke.json"; exit 1; } ;;
    corpus)
      timeout ${CORPUS_S:-150} python3 tests/corpus_runner.py --device cuda --workers ${CORPUS_WORKERS:-6} --timeout 120 --out "$OUT/corpus-gpu.md" \
        > "$OUT/corpus.log" 2>&1; echo "corpus exit $?"; sed -n 3,4p "$OUT/corpus-gpu.md" ;;
    latency)
      timeout 120 python3 benchmarks/verify_latency.py --device cuda --runs 2 > "$OUT/latency.md" 2>&1
      echo "latency exit $?"; grep -A4 "^| machine" "$OUT/latency.md" ;;
    kernelbench)
      [ -f .kbresults/kernelbench.jsonl ] && cp .kbresults/kernelbench.jsonl "$OUT/kernelbench.jsonl"
      left=$(( ${KB_BUDGET_S:-560} - ($(date +%s) - started) ))
      timeout $((left + 30)) python3 benchmarks/kernelbench_judge.py --root .kb --workers "${KB_WORKERS:-4}" \
        --stop-after "$left" --jsonl "$OUT/kernelbench.jsonl" --resume --out "$OUT/kernelbench.md" \
        > "$OUT/kernelbench.log" 2>&1
      echo "kernelbench exit $?"; grep -c . "$OUT/kernelbench.jsonl"; sed -n 5,9p "$OUT/kernelbench.md" ;;
  esac
done
