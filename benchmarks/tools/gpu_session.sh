#!/usr/bin/env bash
# One lent GPU's short session (the device tool's 15 minutes), in order of value; every step is bounded by
# `timeout` and writes under $OUT as it goes, so a session cut short still returns what it measured.
#
# The records (<step>.json: gpu_check's record; <step>.log) come back as one $OUT/records.tar.gz, rewritten
# after every step (the device tool returns a few files only); the stages' files stay in $WORK.
#
#   1. extended   the extended scale's stand-ins (WRN-28-2, ResNet-50-v1d-small at 1x28x28): plain training
#                  and the gated search's throughput after a whole epoch of warm-up (frozen weights, as the
#                  scale searches), for its GPU estimate (benchmarks/studies/scale_estimate.py)
#   2. concurrent_* $COPIES copies of the WRN part of 1 at once, 2 CPU threads each, with nvidia-smi
#                  utilisation every 2 s: how far one GPU's throughput grows when jobs share it
#   3. paper       the paper-path rehearsal (benchmarks/tools/gpu_check.py, every stage) at this commit
#   4. pytest_cuda.log   the CUDA unit tests
#
# Run on the device machine from the repository root, with Fashion-MNIST and the device's missing
# pure-Python packages in the ignored data/ (docs/results.md, "Benchmarks"), e.g. through the device tool:
#   OUT=$OUT bash benchmarks/tools/gpu_session.sh          (carry: data)
set -u
: "${OUT:?set OUT to the folder that collects the records}"
PY=${PY:-python3}
COPIES=${COPIES:-4}
WORK=${WORK:-/tmp/gpu_session}
export PYTHONPATH="$PWD:$PWD/data/gpu_site${PYTHONPATH:+:$PYTHONPATH}"
REC="$WORK/records"
mkdir -p "$OUT" "$REC"
pack() { tar czf "$OUT/records.tar.gz.tmp" -C "$WORK" records && mv "$OUT/records.tar.gz.tmp" "$OUT/records.tar.gz"; }
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$REC/session.log"; }

{ git rev-parse HEAD; git status --short | head -20; nvidia-smi; } > "$REC/machine.txt" 2>&1
stamp "extended stand-ins"
timeout 210 "$PY" benchmarks/tools/gpu_check.py --out "$WORK/extended" --plans extended --budget-s 180 \
    --stages cuda,wrn_train,wrn_search,resnet_train,resnet_search > "$REC/extended.log" 2>&1
stamp "extended: rc $?"
cp "$WORK/extended/gpu_check.json" "$REC/extended.json"; pack

stamp "$COPIES concurrent WRN-28-2 copies"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 > "$REC/concurrent_smi.csv" 2>&1 &
smi=$!
pids=()
for i in $(seq 1 "$COPIES"); do
    OMP_NUM_THREADS=2 timeout 150 "$PY" benchmarks/tools/gpu_check.py --out "$WORK/copy$i" --plans extended \
        --budget-s 120 --stages wrn_train,wrn_search > "$REC/concurrent_copy$i.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
kill "$smi" 2>/dev/null
stamp "concurrent: done"
for i in $(seq 1 "$COPIES"); do cp "$WORK/copy$i/gpu_check.json" "$REC/concurrent_copy$i.json"; done; pack

stamp "paper-path rehearsal"
timeout 240 "$PY" benchmarks/tools/gpu_check.py --out "$WORK/paper" > "$REC/paper.log" 2>&1
stamp "paper: rc $?"
cp "$WORK/paper/gpu_check.json" "$REC/paper.json"; pack

stamp "CUDA unit tests"
timeout 100 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_train.py tests/test_bench.py \
    > "$REC/pytest_cuda.log" 2>&1
stamp "pytest: rc $?"; pack
