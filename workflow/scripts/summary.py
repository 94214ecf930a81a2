"""The Markdown summary of every experiment."""
from darc.reporting import summary_markdown

sm = snakemake  # noqa: F821
summary_markdown(sm.input, sm.output[0])
