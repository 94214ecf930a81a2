# Theory: the Rademacher bounds of the DARC reconstruction (simplified classes with constrained
# weights, not the full DARC networks), computed and checked on synthetic data (library: theory/;
# derivations: notebooks/0*.py, jupytext percent format). Settings: the `theory:` section of the
# config, with `theory.scales[<scale>]` merged over it (see theory/config.py).
from pathlib import Path

from theory.config import settings as theory_settings

THEORY = theory_settings(config)
# Same layout as the other rules (common.smk): results/ at the default scale, runs/<scale>/results/ otherwise.
THEORY_RESULTS = RESULTS
THEORY_LOGS = f"{RUNS}/logs/theory"
THEORY_PARTS = ["linear", "hidden", "weighted", "gap", "rates", "tightness"]
THEORY_FIGURE_PARTS = {"linear": ["linear", "weighted"], "hidden": ["hidden"], "gap": ["gap"],
                       "tightness": ["tightness"], "rates": ["rates", "gap"]}
THEORY_NOTEBOOKS = sorted(p.stem for p in Path("notebooks").glob("0*.py"))
THEORY_OUTPUTS = [
    f"{THEORY_RESULTS}/tables/theory.csv",
    f"{THEORY_RESULTS}/tables/theory.provenance.json",
    *expand(f"{THEORY_RESULTS}/figures/theory_{{fig}}.{{ext}}", fig=list(THEORY_FIGURE_PARTS), ext=["png", "pdf"]),
]
if THEORY["scale"] != "smoke":  # executed copies of the derivations (they do not depend on the scale)
    THEORY_OUTPUTS += expand(f"{THEORY_RESULTS}/notebooks/{{nb}}.html", nb=THEORY_NOTEBOOKS)


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
    benchmark:
        f"{BENCHMARKS}/theory_experiment/{{part}}.tsv"
    conda:
        "../envs/darc.yaml"
    log:
        f"{THEORY_LOGS}/{{part}}.log",
    script:
        "../scripts/theory_experiment.py"


rule theory_table:
    """All theory experiments in one tidy CSV (a `violated` column from theory.checks), with a provenance sidecar."""
    input:
        csv=expand(f"{THEORY_RESULTS}/theory/{{part}}.csv", part=THEORY_PARTS),
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_PARTS),
    output:
        csv=report(f"{THEORY_RESULTS}/tables/theory.csv", caption="../report/theory_table.rst", category="Theory"),
        provenance=f"{THEORY_RESULTS}/tables/theory.provenance.json",
    benchmark:
        f"{BENCHMARKS}/theory_table/all.tsv"
    conda:
        "../envs/darc.yaml"
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
    benchmark:
        f"{BENCHMARKS}/theory_figure_linear/all.tsv"
    conda:
        "../envs/darc.yaml"
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
    benchmark:
        f"{BENCHMARKS}/theory_figure_hidden/all.tsv"
    conda:
        "../envs/darc.yaml"
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
    benchmark:
        f"{BENCHMARKS}/theory_figure_gap/all.tsv"
    conda:
        "../envs/darc.yaml"
    log:
        f"{THEORY_LOGS}/figure_gap.log",
    script:
        "../scripts/theory_figure.py"


rule theory_figure_tightness:
    input:
        tightness=f"{THEORY_RESULTS}/theory/tightness.csv",
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_FIGURE_PARTS["tightness"]),
    output:
        png=report(f"{THEORY_RESULTS}/figures/theory_tightness.png", caption="../report/theory_tightness.rst", category="Theory"),
        pdf=f"{THEORY_RESULTS}/figures/theory_tightness.pdf",
    params:
        figure="tightness",
    benchmark:
        f"{BENCHMARKS}/theory_figure_tightness/all.tsv"
    conda:
        "../envs/darc.yaml"
    log:
        f"{THEORY_LOGS}/figure_tightness.log",
    script:
        "../scripts/theory_figure.py"


rule theory_figure_rates:
    input:
        rates=f"{THEORY_RESULTS}/theory/rates.csv",
        gap=f"{THEORY_RESULTS}/theory/gap.csv",
        provenance=expand(f"{THEORY_RESULTS}/theory/{{part}}.provenance.json", part=THEORY_FIGURE_PARTS["rates"]),
    output:
        png=report(f"{THEORY_RESULTS}/figures/theory_rates.png", caption="../report/theory_rates.rst", category="Theory"),
        pdf=f"{THEORY_RESULTS}/figures/theory_rates.pdf",
    params:
        figure="rates",
    benchmark:
        f"{BENCHMARKS}/theory_figure_rates/all.tsv"
    conda:
        "../envs/darc.yaml"
    log:
        f"{THEORY_LOGS}/figure_rates.log",
    script:
        "../scripts/theory_figure.py"


rule theory_notebook:
    """Execute one derivation notebook (jupytext source) and write the executed copy as HTML."""
    input:
        "notebooks/{nb}.py",
    output:
        html=f"{THEORY_RESULTS}/notebooks/{{nb}}.html",
        provenance=f"{THEORY_RESULTS}/notebooks/{{nb}}.provenance.json",
    params:
        scale=THEORY["scale"],
    wildcard_constraints:
        nb="|".join(THEORY_NOTEBOOKS) or "none",
    threads: 1
    benchmark:
        f"{BENCHMARKS}/theory_notebook/{{nb}}.tsv"
    conda:
        "../envs/darc.yaml"
    log:
        f"{THEORY_LOGS}/notebook_{{nb}}.log",
    script:
        "../scripts/theory_notebook.py"
