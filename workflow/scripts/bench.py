"""Benchmark every fine-tuned network of an experiment against its base.

Guarded by ``__main__``: the peak-memory probe starts spawned children, which re-import this file.
"""
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from darc.bench_stage import bench

if __name__ == "__main__":
    sm = snakemake  # noqa: F821
    with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
        runs = [Path(p).parent for p in [*sm.input.finetuned, *sm.input.grid_peers, *sm.input.peers]]
        bench(sm.params.exp, Path(sm.input.base).parent, runs, sm.output[0], scale=sm.params.scale)
