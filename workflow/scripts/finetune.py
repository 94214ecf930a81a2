"""Fine-tune the network materialised by one search."""
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from darc.experiment import finetune_search

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
    finetune_search(sm.params.exp, Path(sm.input[0]).parent, Path(sm.output[0]).parent, scale=sm.params.scale,
                    progress=False)
