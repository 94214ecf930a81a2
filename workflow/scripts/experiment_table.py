"""The experiment's results table, with the paper's claims as reference columns."""
from darc.reporting import experiment_table

sm = snakemake  # noqa: F821
experiment_table(sm.input.bench, sm.input.base, sm.params.exp.get("stands_for"), sm.output.table, sm.output.base)
