rule tradeoff_figure:
    """Accuracy against measured speed-up and parameter reduction: the lambda grid (first seed), the
    operating points (mean +- std over seeds), the equal-budget reference and the raw base."""
    input:
        f"{RESULTS}/tables/{{exp}}.csv",
    output:
        png=report(f"{RESULTS}/figures/{{exp}}_tradeoff.png", caption="../report/tradeoff.rst",
                   category="Compression"),
        pdf=f"{RESULTS}/figures/{{exp}}_tradeoff.pdf",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/tradeoff_figure.log",
    benchmark:
        f"{BENCHMARKS}/tradeoff_figure/{{exp}}.tsv"
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/tradeoff_figure.py"


rule gates_figure:
    """Every gate's value through the search, one panel per lambda (first seed)."""
    input:
        first_seed_runs("search"),
    output:
        png=report(f"{RESULTS}/figures/{{exp}}_gates.png", caption="../report/gates.rst", category="Compression"),
        pdf=f"{RESULTS}/figures/{{exp}}_gates.pdf",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/gates_figure.log",
    benchmark:
        f"{BENCHMARKS}/gates_figure/{{exp}}.tsv"
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/gates_figure.py"


rule architecture_figure:
    """What each slot became at each lambda of the grid (first seed): kept, replaced (by which
    alternative), several candidates, or dropped."""
    input:
        f"{RESULTS}/tables/{{exp}}.csv",
    output:
        png=report(f"{RESULTS}/figures/{{exp}}_architecture.png", caption="../report/architecture.rst",
                   category="Compression"),
        pdf=f"{RESULTS}/figures/{{exp}}_architecture.pdf",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/architecture_figure.log",
    benchmark:
        f"{BENCHMARKS}/architecture_figure/{{exp}}.tsv"
    script:
        "../scripts/architecture_figure.py"
