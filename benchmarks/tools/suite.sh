#!/usr/bin/env bash
# Every benchmark in benchmarks/tools/run.py, one after another at 1 thread, then the CUDA check where a GPU
# exists. Run it on a quiet machine; each benchmark writes <out>/<name>.json with its environment.
#
#     bash benchmarks/tools/suite.sh [OUT_DIR]        (default runs/benchmarks; PYTHON=... to pick the interpreter)
set -euo pipefail
out=${1:-runs/benchmarks}
py=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
run() {
  local start=$SECONDS
  echo "== $*"
  "$py" benchmarks/tools/run.py "$@" --threads 1 --out "$out"
  echo "   ($((SECONDS - start)) s)"
}
run gated_step_time
run materialize_overhead --pairs 40
run ab_repeatability
run cost_model_error --context slot
run cost_model_error --context parent
run alternative_latency --pairs 10
if "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "== gpu_check"; "$py" benchmarks/tools/gpu_check.py --out "$out/gpu_check"
fi
