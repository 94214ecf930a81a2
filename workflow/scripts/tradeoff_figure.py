"""Accuracy against measured speed-up and parameter reduction."""
from darc.reporting import tradeoff_figure

sm = snakemake  # noqa: F821
tradeoff_figure(sm.input[0], sm.output.png, sm.output.pdf)
