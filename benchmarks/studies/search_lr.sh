#!/usr/bin/env bash
# The search/fine-tune learning rate for a converged base: the equal-budget reference and DARC at a few
# lambdas, from the default scale's seed-0 bases, at several (search lr, fine-tune lr) pairs. Each run is the
# workflow's own `darc search` + `darc finetune` with `--set` overrides. Two runs at a time, one thread each.
#
#   .venv/bin/snakemake --cores 2 runs/default/{cifar_wrn,imagenet_resnet}/seed0/base/model.pt \
#       runs/default/{cifar_wrn,imagenet_resnet}/latency_table.json     # the bases (about 17 min)
#   bash benchmarks/studies/search_lr.sh [WORK] [OUT]     # default runs/search_lr, benchmarks/measured/search_lr
#
# Jobs: lines "EXP VARIANT SEARCH_LR FINETUNE_LR POINT [SEED]" (POINT: reference or lam<L>; SEED, default 0,
# re-seeds search and fine-tune from the one seed-0 base, as the workflow's seeds do) on standard input,
# or the default list below. OUT/search_lr.csv collects every finished run. Extra `--set KEY=VALUE` options for
# every job (e.g. SET="--set search.weights=frozen") come from the environment variable SET; ROOT (default
# runs/default) is the workflow run directory whose bases, experiment files and latency tables are used;
# PARALLEL (default 2) runs that many jobs at a time.
set -euo pipefail
work=${1:-runs/search_lr}
out=${2:-benchmarks/measured/search_lr}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$work" "$out"
one() {
  local exp=$1 var=$2 slr=$3 flr=$4 point=$5 seed=${6:-0} R=${ROOT:-runs/default}/$1 opt
  local dir=$work/$exp/$var/$point
  if [ "$seed" != 0 ]; then dir=$work/$exp/$var-seed$seed/$point; fi
  mkdir -p "$dir"
  if [ "$point" = reference ]; then opt=--reference; else opt="--lam ${point#lam}"; fi
  local common="--config $R/experiment.yaml --set seed=$seed --scale default --no-progress --set search.train.lr=$slr --set finetune.lr=$flr ${SET:-}"
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 $py -m darc.cli search $common --set search.latency_table=$R/latency_table.json $opt \
    --base "$R/seed0/base" --out "$dir/search" > "$dir/search.log" 2>&1
  # shellcheck disable=SC2086
  OMP_NUM_THREADS=1 $py -m darc.cli finetune $common --search-dir "$dir/search" --out "$dir/finetune" > "$dir/finetune.log" 2>&1
  echo "done $*"
}
export -f one; export work py SET ROOT
if [ -t 0 ]; then
  jobs="cifar_wrn A 0.02 0.01 reference
imagenet_resnet A 0.02 0.01 reference
cifar_wrn B 0.005 0.005 reference
imagenet_resnet B 0.005 0.005 reference
cifar_wrn C 0.002 0.002 reference
imagenet_resnet C 0.002 0.002 reference
cifar_wrn B 0.005 0.005 lam0.4
imagenet_resnet B 0.005 0.005 lam1.0
cifar_wrn B 0.005 0.005 lam8.0
imagenet_resnet B 0.005 0.005 lam5.0
cifar_wrn B 0.005 0.005 lam12.0"
else
  jobs=$(cat)
fi
echo "$jobs" | xargs -P "${PARALLEL:-2}" -L 1 bash -c 'one "$@"' _
"$py" - "$work" "$out/search_lr.csv" <<'PY'
import csv, json, sys
from pathlib import Path
work, dest = Path(sys.argv[1]), Path(sys.argv[2])
rows = []
for ft in sorted(work.glob("*/*/*/finetune/result.json")):
    exp, var, point = ft.parts[-5:-2]
    s, f = (json.loads(p.read_text()) for p in (ft.parent.parent / "search" / "result.json", ft))
    cfg = s.get("config", {})
    rows.append({"experiment": exp, "variant": var, "point": point,
                 "search_lr": cfg.get("train", {}).get("lr"), "weights": cfg.get("weights", "train"),
                 "finetune_lr": f.get("config", {}).get("finetune", {}).get("lr"),
                 "val_acc": f.get("val_acc"), "test_acc": f.get("test_acc"), "arch_cost": s.get("arch_cost"),
                 **{f"slots_{k}": s.get("decisions", {}).get(k) for k in ("kept", "replaced", "dropped")},
                 "git_commit": f.get("git_commit")})
with dest.open("w", newline="") as fh:
    w = csv.DictWriter(fh, fieldnames=list(rows[0])); w.writeheader(); w.writerows(rows)
print(dest, len(rows), "runs")
PY
