"""Draw one theory figure, provenance in its metadata (snakemake rules theory_figure_*)."""

import json

import pandas as pd

from theory import outputs, plots

name = snakemake.params.figure  # noqa: F821
tables = {key: pd.read_csv(path) for key, path in snakemake.input.items() if key != "provenance"}  # noqa: F821
parts = [json.loads(open(path).read()) for path in snakemake.input.provenance]  # noqa: F821
fig = plots.FIGURES[name](**tables)
prov = outputs.provenance(scale=parts[0]["scale"], config={p["experiment"]: p["config"] for p in parts},
                          seeds={p["experiment"]: p["seeds"] for p in parts}, figure=name)
outputs.save_figure(fig, [snakemake.output.png, snakemake.output.pdf], prov)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"figure {name} from {sorted(tables)}\n")
