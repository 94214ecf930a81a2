"""Train the base network of an experiment."""
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from darc.experiment import train_base

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
    train_base(sm.params.exp, Path(sm.output.result).parent, scale=sm.params.scale, progress=False)
