"""Write the experiment as this run merged it, for the `darc` commands of the training jobs."""
from darc.config import experiment_yaml
from darc.io import atomic_write_text

sm = snakemake  # noqa: F821
atomic_write_text(experiment_yaml(sm.params.exp), sm.output[0])
with open(sm.log[0], "w") as log:
    print(f"{sm.wildcards.exp}: {sm.output[0]}", file=log)
