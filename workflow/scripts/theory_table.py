"""Merge the theory experiments into results/tables/theory.csv (snakemake rule theory_table).

The `violated` column marks every row that refutes its bound (theory.checks); it should be all False.
"""

import json

import pandas as pd

from theory import checks, outputs

table = pd.concat([pd.read_csv(path) for path in snakemake.input.csv], ignore_index=True)  # noqa: F821
table["violated"] = checks.flags(table)
parts = [json.loads(open(path).read()) for path in snakemake.input.provenance]  # noqa: F821
outputs.write_csv(table, snakemake.output.csv)  # noqa: F821
outputs.write_json(outputs.provenance(scale=parts[0]["scale"], config={p["experiment"]: p["config"] for p in parts},
                                      seeds={p["experiment"]: p["seeds"] for p in parts}, rows=len(table),
                                      violations=int(table["violated"].sum()),
                                      runtime_s={p["experiment"]: p["runtime_s"] for p in parts}),
                   snakemake.output.provenance)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"{len(table)} rows from {len(parts)} experiments; {int(table['violated'].sum())} violated bounds\n")
