rule tradeoff_figure:
    """Accuracy against measured batch-1 speed-up and parameter reduction, one point per lambda."""
    input:
        f"{RESULTS}/tables/{{exp}}.csv",
    output:
        png=report(f"{RESULTS}/figures/{{exp}}_tradeoff.png", caption="../report/tradeoff.rst",
                   category="Compression"),
        pdf=f"{RESULTS}/figures/{{exp}}_tradeoff.pdf",
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/tradeoff_figure.py"


rule gates_figure:
    """Every gate's value per search epoch, one panel per lambda."""
    input:
        search_results,
    output:
        png=report(f"{RESULTS}/figures/{{exp}}_gates.png", caption="../report/gates.rst", category="Compression"),
        pdf=f"{RESULTS}/figures/{{exp}}_gates.pdf",
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/gates_figure.py"
