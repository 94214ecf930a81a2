"""Accuracy against measured speed-up (the protocol's batch size) and parameter reduction."""
from darc.reporting import protocol_batch, tradeoff_figure

sm = snakemake  # noqa: F821
tradeoff_figure(sm.input[0], sm.output.png, sm.output.pdf, batch=protocol_batch(sm.params.exp))
