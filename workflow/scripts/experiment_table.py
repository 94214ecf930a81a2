"""The experiment's run table and its operating points (mean +- std over seeds), peers beside each point."""
from darc.reporting import experiment_tables, protocol_batch

sm = snakemake  # noqa: F821
experiment_tables(sm.input.bench, sm.input.bases, sm.input.references, sm.input.points,
                  sm.params.exp.get("stands_for"), sm.output.runs, sm.output.points,
                  batch=protocol_batch(sm.params.exp))
