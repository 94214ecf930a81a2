"""Per-rule wall time of the run, from every job's `benchmark:` record."""
from darc.reporting import rule_times

sm = snakemake  # noqa: F821
rule_times(sm.params.benchmarks, sm.output[0])
