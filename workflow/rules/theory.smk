# Theory: the Rademacher bounds of the DARC reconstruction, computed and checked on synthetic data
# (library: theory/; derivations: notebooks/01-04). Settings: the `theory:` section of the config,
# with `theory.scales[<scale>]` merged over it (see theory/config.py).
from theory.config import settings as theory_settings

THEORY = theory_settings(config)
THEORY_PARTS = ["linear", "hidden", "weighted", "gap"]
THEORY_FIGURE_PARTS = {"linear": ["linear", "weighted"], "hidden": ["hidden"], "gap": ["gap"]}
THEORY_OUTPUTS = [
    "results/tables/theory.csv",
    "results/tables/theory.provenance.json",
    *expand("results/figures/theory_{fig}.{ext}", fig=list(THEORY_FIGURE_PARTS), ext=["png", "pdf"]),
]


rule theory_experiment:
    """One experiment of theory/experiments.py as a tidy table plus its provenance."""
    output:
        csv="results/theory/{part}.csv",
        provenance="results/theory/{part}.provenance.json",
    params:
        settings=lambda wc: THEORY[wc.part],
        scale=THEORY["scale"],
    wildcard_constraints:
        part="|".join(THEORY_PARTS),
    threads: 1
    log:
        "logs/theory/{part}.log",
    script:
        "../scripts/theory_experiment.py"


rule theory_table:
    """All theory experiments in one tidy CSV, with a provenance sidecar."""
    input:
        csv=expand("results/theory/{part}.csv", part=THEORY_PARTS),
        provenance=expand("results/theory/{part}.provenance.json", part=THEORY_PARTS),
    output:
        csv="results/tables/theory.csv",
        provenance="results/tables/theory.provenance.json",
    log:
        "logs/theory/table.log",
    script:
        "../scripts/theory_table.py"


rule theory_figure_linear:
    input:
        linear="results/theory/linear.csv",
        weighted="results/theory/weighted.csv",
        provenance=expand("results/theory/{part}.provenance.json", part=THEORY_FIGURE_PARTS["linear"]),
    output:
        png=report("results/figures/theory_linear.png", caption="../report/theory_linear.rst", category="Theory"),
        pdf="results/figures/theory_linear.pdf",
    params:
        figure="linear",
    log:
        "logs/theory/figure_linear.log",
    script:
        "../scripts/theory_figure.py"


rule theory_figure_hidden:
    input:
        hidden="results/theory/hidden.csv",
        provenance=expand("results/theory/{part}.provenance.json", part=THEORY_FIGURE_PARTS["hidden"]),
    output:
        png=report("results/figures/theory_hidden.png", caption="../report/theory_hidden.rst", category="Theory"),
        pdf="results/figures/theory_hidden.pdf",
    params:
        figure="hidden",
    log:
        "logs/theory/figure_hidden.log",
    script:
        "../scripts/theory_figure.py"


rule theory_figure_gap:
    input:
        gap="results/theory/gap.csv",
        provenance=expand("results/theory/{part}.provenance.json", part=THEORY_FIGURE_PARTS["gap"]),
    output:
        png=report("results/figures/theory_gap.png", caption="../report/theory_gap.rst", category="Theory"),
        pdf="results/figures/theory_gap.pdf",
    params:
        figure="gap",
    log:
        "logs/theory/figure_gap.log",
    script:
        "../scripts/theory_figure.py"
