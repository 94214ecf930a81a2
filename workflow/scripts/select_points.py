"""Choose the operating points on the first seed's validation accuracy (snakemake checkpoint)."""
from contextlib import redirect_stderr, redirect_stdout

from darc.reporting import select_operating_points

sm = snakemake  # noqa: F821
with open(sm.log[0], "w") as log, redirect_stdout(log), redirect_stderr(log):
    print(select_operating_points(sm.input.finetuned, sm.input.reference, sm.params.exp, sm.output[0]))
