# Theory: the Rademacher bounds of the DARC reconstruction, computed and checked on synthetic data
# (library: theory/; derivations: notebooks/01-04). Settings: the `theory:` section of the config,
# with `theory.scales[<scale>]` merged over it (see theory/config.py).
from theory.config import settings as theory_settings

THEORY = theory_settings(config)
# Same layout as the other rules (common.smk): results/ at the default scale, runs/<scale>/results/ otherwise.
THEORY_RESULTS = RESULTS
THEORY_LOGS = f"{RUNS}/logs/theory"
THEORY_PARTS = ["linear", "hidden", "weighted", "gap"]
THEORY_FIGURE_PARTS = {"linear": ["linear", "weighted"], "hidden": ["hidden"], "gap": ["gap"]}
THEORY_OUTPUTS = [
    f"{THEORY_RESULTS}/tables/theory.csv",
    f"{THEORY_RESULTS}/tables/theory.provenance.json",
    *expand(f"{THEORY_RESULTS}/figures/theory_{{fig}}.{{ext}}", fig=list(THEORY_FIGURE_PARTS), ext=["png", "pdf"]),
]


rule theory_experiment:
    """One experiment of theory/experiments.py as a tidy table plus its provenance."""
    output:
        csv=f"{THEORY_RESULTS}/theory/{{part}}.csv",
        provenance=f"{THEORY_RESULTS}/theory/{{part}}.provenance.json",
    params:
        settings=lambda wc: THEORY[wc.part],
        scale=THEORY["scale"],
    wildcard_constraints:
        part="|".join(THEORY_PARTS),
    threads: 1
    log:
        f"{THEORY_LOGS}/{{part}}.log",
    script:
        "../scripts/theory_experiment.py"


rule theory_table:
    """All theory experiments in one tidy CSV, with a provenance sidecar."""
    input:
        csv=expand(f"{THEORY_RESULTS}/theory/{{part}}.csv", part=THEORY_PARTS),
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_PARTS),
    output:
        csv=f"{THEORY_RESULTS}/tables/theory.csv",
        provenance=f"{THEORY_RESULTS}/tables/theory.provenance.json",
    log:
        f"{THEORY_LOGS}/table.log",
    script:
        "../scripts/theory_table.py"


rule theory_figure_linear:
    input:
        linear=f"{THEORY_RESULTS}/theory/linear.csv",
        weighted=f"{THEORY_RESULTS}/theory/weighted.csv",
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_FIGURE_PARTS["linear"]),
    output:
        png=report(f"{THEORY_RESULTS}/figures/theory_linear.png", caption="../report/theory_linear.rst", category="Theory"),
        pdf=f"{THEORY_RESULTS}/figures/theory_linear.pdf",
    params:
        figure="linear",
    log:
        f"{THEORY_LOGS}/figure_linear.log",
    script:
        "../scripts/theory_figure.py"


rule theory_figure_hidden:
    input:
        hidden=f"{THEORY_RESULTS}/theory/hidden.csv",
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_FIGURE_PARTS["hidden"]),
    output:
        png=report(f"{THEORY_RESULTS}/figures/theory_hidden.png", caption="../report/theory_hidden.rst", category="Theory"),
        pdf=f"{THEORY_RESULTS}/figures/theory_hidden.pdf",
    params:
        figure="hidden",
    log:
        f"{THEORY_LOGS}/figure_hidden.log",
    script:
        "../scripts/theory_figure.py"


rule theory_figure_gap:
    input:
        gap=f"{THEORY_RESULTS}/theory/gap.csv",
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_FIGURE_PARTS["gap"]),
    output:
        png=report(f"{THEORY_RESULTS}/figures/theory_gap.png", caption="../report/theory_gap.rst", category="Theory"),
        pdf=f"{THEORY_RESULTS}/figures/theory_gap.pdf",
    params:
        figure="gap",
    log:
        f"{THEORY_LOGS}/figure_gap.log",
    script:
        "../scripts/theory_figure.py"
