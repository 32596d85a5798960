#!/usr/bin/env bash
# One device call for the judge on the GPU machine. Carry .whl (../shared/device/wheels.sh), .kb (a copy of
# ../shared/kernelbench), .kbresults (an earlier call's kernelbench.jsonl, to continue it) and, for the third-party
# corpus, .tpsite (the pinned packages' files that tests/thirdparty reads, extracted from their wheels).
#   bash benchmarks/gpu_judge.sh smoke corpus+thirdparty+kernelbench latency
# Steps joined with + run at the same time (they share the GPUs through the slots); the others run in order.
# Each step writes its table under $OUT and its log into $OUT/logs.tgz (a device call returns at most 8 files);
# the whole call is kept inside the device tool's 600 s limit (KB_BUDGET_S).
set -u
started=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
[ -d .tpsite ] && export PYTHONPATH=$PYTHONPATH:$PWD/.tpsite
export PYTHONUNBUFFERED=1
LOGS=/tmp/gpu-judge-logs; mkdir -p $LOGS
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

left() { echo $(( ${KB_BUDGET_S:-560} - ($(date +%s) - started) )); }

step() {
  case $1 in
    smoke)  # one honest candidate through the real judge: stop the call here (and save device time) if it fails
      timeout 120 python3 tests/attack_runner.py tests/corpus/honest/softmax__multi_row.py tests/corpus/problems/softmax.py \
        --device cuda > "$OUT/smoke.json" 2>&1
      grep -q '"passed": true' "$OUT/smoke.json" || { echo "smoke failed"; head -c 3000 "$OUT/smoke.json"; return 1; } ;;
    corpus)
      timeout ${CORPUS_S:-300} python3 tests/corpus_runner.py --device cuda --workers ${CORPUS_WORKERS:-6} --timeout 120 \
        --out "$OUT/corpus-gpu.md" > $LOGS/corpus.log 2>&1; echo "corpus exit $?"; sed -n 3,4p "$OUT/corpus-gpu.md" ;;
    thirdparty)
      timeout ${THIRDPARTY_S:-300} python3 tests/thirdparty/build.py --device cuda --workers ${THIRDPARTY_WORKERS:-4} \
        --out "$OUT/thirdparty-gpu.md" > $LOGS/thirdparty.log 2>&1; echo "thirdparty exit $?"; sed -n 3,5p "$OUT/thirdparty-gpu.md" ;;
    latency)
      timeout 120 python3 benchmarks/verify_latency.py --device cuda --runs 2 > "$OUT/latency.md" 2>&1
      echo "latency exit $?"; grep -A4 "^| machine" "$OUT/latency.md" ;;
    kernelbench)
      [ -f .kbresults/kernelbench.jsonl ] && cp .kbresults/kernelbench.jsonl "$OUT/kernelbench.jsonl"
      budget=$(left)
      timeout $((budget + 30)) python3 benchmarks/kernelbench_judge.py --root .kb --workers "${KB_WORKERS:-4}" \
        --alone-workers "${KB_ALONE_WORKERS:-1}" --stop-after "$budget" --jsonl "$OUT/kernelbench.jsonl" --resume \
        --out "$OUT/kernelbench.md" > $LOGS/kernelbench.log 2>&1
      echo "kernelbench exit $?"; grep -c . "$OUT/kernelbench.jsonl"; sed -n 5,12p "$OUT/kernelbench.md" ;;
    *) echo "unknown step $1"; return 2 ;;
  esac
}

for group in "$@"; do
  IFS=+ read -r -a together <<< "$group"
  if [ ${#together[@]} -eq 1 ]; then
    step "$group" || break
  else
    for s in "${together[@]}"; do step "$s" > $LOGS/step-$s.out 2>&1 & done
    wait
    for s in "${together[@]}"; do cat $LOGS/step-$s.out; done
  fi
done
tar -czf "$OUT/logs.tgz" -C $LOGS . 2>/dev/null
echo "call took $(( $(date +%s) - started )) s"
