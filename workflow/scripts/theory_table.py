"""Merge the theory experiments into results/tables/theory.csv (snakemake rule theory_table)."""

import json

import pandas as pd

from theory import outputs

table = pd.concat([pd.read_csv(path) for path in snakemake.input.csv], ignore_index=True)  # noqa: F821
parts = [json.loads(open(path).read()) for path in snakemake.input.provenance]  # noqa: F821
outputs.write_csv(table, snakemake.output.csv)  # noqa: F821
outputs.write_json(outputs.provenance(scale=parts[0]["scale"], config={p["experiment"]: p["config"] for p in parts},
                                      seeds={p["experiment"]: p["seeds"] for p in parts}, rows=len(table),
                                      runtime_s={p["experiment"]: p["runtime_s"] for p in parts}),
                   snakemake.output.provenance)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"{len(table)} rows from {len(parts)} experiments\n")
