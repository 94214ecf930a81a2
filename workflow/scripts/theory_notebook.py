"""Execute one derivation notebook and write its HTML copy (snakemake rule theory_notebook)."""

import time

from theory import notebook, outputs

source = snakemake.input[0]  # noqa: F821
start = time.perf_counter()
nb = notebook.execute(source)
runtime = time.perf_counter() - start
outputs.write_text(notebook.to_html(nb), snakemake.output.html)  # noqa: F821
outputs.write_json(outputs.provenance(scale=snakemake.params.scale, config={}, notebook=source,  # noqa: F821
                                      runtime_s=round(runtime, 2), finals=sorted(notebook.finals(nb))),
                   snakemake.output.provenance)  # noqa: F821
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"{source}: executed in {runtime:.1f} s\n")
