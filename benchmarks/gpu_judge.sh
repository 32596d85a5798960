#!/usr/bin/env bash
# One device call for the judge on the GPU machine. Carry .whl (../shared/device/wheels.sh), .kb (a copy of
# ../shared/kernelbench), .kbresults (an earlier call's kernelbench.jsonl, to continue it), .tpsite (the pinned
# packages' files that tests/thirdparty reads, extracted from their wheels), .attacks (outside attackers' files) and
# .raypack (Ray core for the multigpu step, benchmarks/pack_ray.sh).
#   bash benchmarks/gpu_judge.sh smoke corpus+thirdparty+kernelbench latency
#   bash benchmarks/gpu_judge.sh probe timing@1,dobench@1+escape@0,kernelbench@0
# Arguments run in order; within one, branches joined with + run at the same time, steps joined with , run in
# order inside their branch, and step@N pins a step to GPU N (CUDA_VISIBLE_DEVICES). Each step writes its table under
# $OUT and its log into $OUT/logs.tgz (a device call returns at most 8 files); the whole call is kept inside the
# device tool's 600 s limit (KB_BUDGET_S).
set -u
started=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
[ -d .tpsite ] && export PYTHONPATH=$PYTHONPATH:$PWD/.tpsite
export PYTHONUNBUFFERED=1
LOGS=/tmp/gpu-judge-logs; mkdir -p $LOGS
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# Logs come back even if the call is cut short at the device time left: re-packed every 20 s while steps run.
( while sleep 20; do tar -czf "$OUT/logs.tgz" -C $LOGS . 2>/dev/null; done ) &
packer=$!

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
        --alone-workers "${KB_ALONE_WORKERS:-1}" --stop-after "$budget" --jsonl "$OUT/kernelbench.jsonl" --resume ${KB_ARGS:-} \
        --out "$OUT/kernelbench.md" > $LOGS/kernelbench.log 2>&1
      echo "kernelbench exit $?"; grep -c . "$OUT/kernelbench.jsonl"; sed -n 5,12p "$OUT/kernelbench.md" ;;
    probe)  # can a confined candidate use CUDA, Triton and the judge's IPC? The rest of the call runs confined if so
      # What the compilers are (the image's $CC is a script that runs another program): kept with the logs.
      for f in ${CC:-} $(command -v gcc cc); do echo "== $f"; head -c 600 "$f" | grep -a . | head -20; ls -la "$(dirname "$f")" | head -30; done \
        > $LOGS/compilers.txt 2>&1
      timeout ${PROBE_S:-240} python3 benchmarks/cuda_confinement_probe.py --out "$OUT/probe.json" > $LOGS/probe.log 2>&1
      echo "probe exit $?"
      if python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(d['works']); sys.exit(0 if d['gpu_confinement_ok'] else 1)" \
        "$OUT/probe.json"; then export KERNELAGENT_GPU_CONFINED=1; else export KERNELAGENT_GPU_CONFINED=0; tail -40 $LOGS/probe.log; fi
      echo "KERNELAGENT_GPU_CONFINED=$KERNELAGENT_GPU_CONFINED" ;;
    timing)
      timeout ${TIMING_S:-300} python3 benchmarks/timing_attacks.py --out "$OUT/timing-attacks-gpu.md" > $LOGS/timing.log 2>&1
      echo "timing attacks exit $?"; sed -n 1,12p "$OUT/timing-attacks-gpu.md" ;;
    dobench)
      timeout ${DOBENCH_S:-300} python3 benchmarks/dobench_compare.py --out "$OUT/dobench-compare.md" > $LOGS/dobench.log 2>&1
      echo "dobench exit $?"; grep "^|" "$OUT/dobench-compare.md" | head -14 ;;
    escape)  # the signal attack sends SIGUSR2 to whatever it can reach: ignored here, so it cannot end the step's timeout
      trap '' USR2
      timeout ${ESCAPE_S:-240} python3 tests/escape/run.py --device cuda --out "$OUT/sandbox-gpu.md" > $LOGS/escape.log 2>&1
      echo "escape exit $?"; sed -n 1,8p "$OUT/sandbox-gpu.md" ;;
    repeat)  # the same kernels timed twice in separate timing calls: do the medians fall in each other's interval?
      timeout ${REPEAT_S:-300} python3 benchmarks/timing_repeat.py --out "$OUT/timing-repeat.md" > $LOGS/repeat.log 2>&1
      echo "repeat exit $?"; grep "^|" "$OUT/timing-repeat.md" ;;
    multigpu)  # the suite on 1 GPU, on every GPU, and through Ray (if .raypack is carried: benchmarks/pack_ray.sh)
      if [ -f .raypack/ray-core.tar.xz ]; then
        mkdir -p /tmp/raysite && tar -C /tmp/raysite -xJf .raypack/ray-core.tar.xz \
          && python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/raysite .raypack/*.whl \
          && export PYTHONPATH=$PYTHONPATH:/tmp/raysite
      fi
      timeout ${MULTIGPU_S:-560} python3 benchmarks/multi_gpu.py --budget ${MULTIGPU_BUDGET:-500} ${MULTIGPU_ARGS:-} \
        --out "$OUT/multi-gpu.md" > $LOGS/multigpu.log 2>&1
      echo "multigpu exit $?"; cat "$OUT/multi-gpu.md" 2>/dev/null | head -60 ;;
    tpdetails)
      timeout 200 python3 tests/thirdparty/build.py --device cuda --details --only ${TP_ONLY:-unsloth_rms_norm fla_sigmoid} \
        > $LOGS/tpdetails.log 2>&1; echo "tpdetails exit $?"; grep -E "False|❌" $LOGS/tpdetails.log | head ;;
    tattacks)  # outside attackers' timing files, if carried
      if [ -d .attacks/timing ]; then
        a=.attacks/timing
        timeout ${TATTACK_S:-200} python3 tests/time_runner.py benchmarks/problems/vector_add.py $a/honest.py $a/batch_concentrate.py \
          $a/batch_concentrate_1launch.py $a/times_redistribute.py $a/times_redistribute_gpu.py $a/batch_concentrate_gc.py $a/side_stream.py \
          $a/sync_patch_side_stream.py $a/frame_t0_15.py $a/honest2.py --device cuda --no-policy --sizes N=16777216 \
          > $LOGS/attacks-timing-add.json 2>&1; echo "timing attackers (add) exit $?"
        timeout ${TATTACK_S:-150} python3 tests/time_runner.py benchmarks/problems/linear_bias_relu.py $a/honest_linear.py \
          $a/batch_concentrate_linear.py $a/times_redistribute_linear.py --device cuda --no-policy \
          --sizes BATCH=2048 IN_FEATURES=2048 OUT_FEATURES=2048 > $LOGS/attacks-timing-linear.json 2>&1
        echo "timing attackers (linear) exit $?"
      fi ;;
    eattacks)  # outside attackers' escape files, if carried
      ls .attacks/escape/{forge_selfreport,json_bomb,fifo_stdout,dir_stdout,disk_unlinked,sysv_shm_persist,mitm_stdin,probe3,survivor,keyring_persist}.py 2>/dev/null \
        | xargs -P 5 -I{} sh -c 'timeout ${EATTACK_S:-120} python3 tests/attack_runner.py {} tests/corpus/problems/elementwise_add.py \
            --no-policy --device cuda > '$LOGS'/attacks-escape-$(basename {} .py).json 2>&1'
      ipcs -a > $LOGS/ipcs-after.txt 2>&1; ls -la /tmp /dev/shm > $LOGS/tmp-after.txt 2>&1; ps aux > $LOGS/ps-after.txt
      echo "attacks done" ;;
    *) echo "unknown step $1"; return 2 ;;
  esac
}

branch() {  # steps joined with , in order; step@N on GPU N. Only a failed smoke step ends its branch: a step that
  # fails (the escape corpus once lost its runner to an attack's signal) must not cost the steps after it.
  IFS=, read -r -a chain <<< "$1"
  for item in "${chain[@]}"; do
    name=${item%@*}
    if [ "$name" != "$item" ]; then (export CUDA_VISIBLE_DEVICES=${item#*@}; step "$name")
    else step "$name"; fi
    status=$?
    [ $status -ne 0 ] && [ "$name" = smoke ] && return 1
  done
  return 0
}

for group in "$@"; do
  IFS=+ read -r -a together <<< "$group"
  if [ ${#together[@]} -eq 1 ]; then
    if [[ $group == probe* ]]; then step probe; else branch "$group" || break; fi
  else
    for b in "${together[@]}"; do branch "$b" > "$LOGS/branch-${b//[^a-z0-9]/_}.out" 2>&1 & done
    wait
    for b in "${together[@]}"; do cat "$LOGS/branch-${b//[^a-z0-9]/_}.out"; done
  fi
done
kill $packer 2>/dev/null
tar -czf "$OUT/logs.tgz" -C $LOGS . 2>/dev/null
echo "call took $(( $(date +%s) - started )) s"
