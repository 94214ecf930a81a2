"""Run one theory experiment (snakemake rule theory_experiment)."""

import time

import torch

from theory import experiments, outputs

torch.set_num_threads(snakemake.threads)  # noqa: F821
part, cfg, scale = snakemake.wildcards.part, snakemake.params.settings, snakemake.params.scale  # noqa: F821
start = time.perf_counter()
table = experiments.run(part, {part: cfg})
runtime = time.perf_counter() - start
outputs.write_csv(table, snakemake.output.csv)  # noqa: F821
outputs.write_json(outputs.provenance(scale=scale, config=cfg, seeds=cfg.get("seeds"), experiment=part,
                                      runtime_s=round(runtime, 2), rows=len(table)),
                   snakemake.output.provenance)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"{part}: {len(table)} rows in {runtime:.1f} s (scale {scale})\n")
