"""The experiment's run table and its operating points (mean +- std over seeds)."""
from darc.reporting import experiment_tables

sm = snakemake  # noqa: F821
experiment_tables(sm.input.bench, sm.input.bases, sm.input.references, sm.input.points,
                  sm.params.exp.get("stands_for"), sm.output.runs, sm.output.points)
