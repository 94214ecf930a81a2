"""Gate trajectories of every lambda's search."""
from pathlib import Path

from darc.reporting import gates_figure

sm = snakemake  # noqa: F821
gates_figure([Path(p).parent for p in sm.input], sm.output.png, sm.output.pdf)
