"""Per-slot decisions of the lambda grid."""
from darc.reporting import architecture_figure

sm = snakemake  # noqa: F821
architecture_figure(sm.input[0], sm.output.png, sm.output.pdf)
