"""Load the experiment's dataset (the documented error if it is missing) and record its metadata."""
from contextlib import redirect_stderr, redirect_stdout

from darc.inputs import load_data
from darc.io import atomic_write_json

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
    atomic_write_json(load_data(sm.params.exp).meta.to_dict(), sm.output[0])
