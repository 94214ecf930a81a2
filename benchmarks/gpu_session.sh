#!/usr/bin/env bash
# One lent GPU's short session (the device tool's 15 minutes), in order of value; every step is bounded by
# `timeout` and writes under $OUT as it goes, so a session cut short still returns what it measured.
#
#   1. extended/   the extended scale's stand-ins (WRN-28-2, ResNet-50-v1d-small at 1x28x28): plain training
#                  and the gated search's throughput after a whole epoch of warm-up (frozen weights, as the
#                  scale searches), for its GPU estimate (benchmarks/scale_estimate.py)
#   2. concurrent/ $COPIES copies of the WRN part of 1 at once, 2 CPU threads each, with nvidia-smi
#                  utilisation every 2 s: how far one GPU's throughput grows when jobs share it
#   3. paper/      the paper-path rehearsal (benchmarks/gpu_check.py, every stage) at this commit
#   4. pytest_cuda.log   the CUDA unit tests
#
# Run on the device machine from the repository root, with Fashion-MNIST and the device's missing
# pure-Python packages in the ignored data/ (README, "Benchmarks"), e.g. through the device tool:
#   OUT=$OUT bash benchmarks/gpu_session.sh          (carry: data)
set -u
: "${OUT:?set OUT to the folder that collects the records}"
PY=${PY:-python3}
COPIES=${COPIES:-4}
export PYTHONPATH="$PWD:$PWD/data/gpu_site${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$OUT/concurrent"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/session.log"; }

{ git rev-parse HEAD; git status --short | head -20; nvidia-smi; } > "$OUT/machine.txt" 2>&1
stamp "extended stand-ins"
timeout 210 "$PY" benchmarks/gpu_check.py --out "$OUT/extended" --plans extended --budget-s 180 \
    --stages cuda,wrn_train,wrn_search,resnet_train,resnet_search > "$OUT/extended.log" 2>&1
stamp "extended: rc $?"

stamp "$COPIES concurrent WRN-28-2 copies"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 2 > "$OUT/concurrent/smi.csv" 2>&1 &
smi=$!
pids=()
for i in $(seq 1 "$COPIES"); do
    OMP_NUM_THREADS=2 timeout 150 "$PY" benchmarks/gpu_check.py --out "$OUT/concurrent/copy$i" --plans extended \
        --budget-s 120 --stages wrn_train,wrn_search > "$OUT/concurrent/copy$i.log" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
kill "$smi" 2>/dev/null
stamp "concurrent: done"

stamp "paper-path rehearsal"
timeout 240 "$PY" benchmarks/gpu_check.py --out "$OUT/paper" > "$OUT/paper.log" 2>&1
stamp "paper: rc $?"

stamp "CUDA unit tests"
timeout 100 "$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_train.py tests/test_bench.py \
    > "$OUT/pytest_cuda.log" 2>&1
stamp "pytest: rc $?"
