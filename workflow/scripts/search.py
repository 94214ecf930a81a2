"""Search one lambda of an experiment (or its equal-budget reference) and materialise the result."""
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from darc.experiment import search

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
    exp = {**sm.params.exp, "search": {**sm.params.exp["search"], "latency_table": sm.input.table}}
    point = sm.wildcards.point
    reference = point == "reference"
    search(exp, 0.0 if reference else float(point.removeprefix("lam")), Path(sm.input.base).parent,
           Path(sm.output.result).parent, scale=sm.params.scale, progress=False, reference=reference)
