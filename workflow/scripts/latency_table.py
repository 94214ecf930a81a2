"""The latency lookup table of an experiment's candidates: the versioned table, if any, completed by
measurement (alone on the machine)."""
from contextlib import redirect_stderr, redirect_stdout

from darc.experiment import measure_latency_table

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
    versioned = sm.input.versioned[0] if sm.input.versioned else None
    measure_latency_table(sm.params.exp, sm.output[0], start_from=versioned)
