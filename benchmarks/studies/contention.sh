#!/usr/bin/env bash
# Two 1-thread jobs at once against one alone, and one 2-thread job: do the two cores slow each other down?
# The default run packs 2 one-thread jobs; this measures what that costs per job, with train_precision
# (default stand-ins, batch 128, float32 and bfloat16 + channels_last arms, medians of 4-step blocks).
#   bash benchmarks/studies/contention.sh   (from the repository root, nothing else running)
# Writes into the record folder benchmarks/measured/2026-11-28-contention (its README has the table;
# benchmarks/studies/contention_summary.py prints it).
set -euo pipefail
out=benchmarks/measured/2026-11-28-contention
run() { .venv/bin/python benchmarks/tools/run.py train_precision --models default --steps 12 "$@"; }
run --threads 1 --out "$out/alone_1t" > "$out/alone_1t.log" 2>&1
run --threads 1 --out "$out/pair_a" > "$out/pair_a.log" 2>&1 &
run --threads 1 --out "$out/pair_b" > "$out/pair_b.log" 2>&1 &
wait
run --threads 2 --out "$out/alone_2t" > "$out/alone_2t.log" 2>&1
