"""The Markdown summary of every experiment."""
from darc.reporting import summary_markdown

sm = snakemake  # noqa: F821
summary_markdown(sm.input.runs, sm.input.points, sm.output[0])
