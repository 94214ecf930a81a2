rule experiment_table:
    """Our measured numbers per lambda, with the paper's claims as labelled reference columns."""
    input:
        bench=f"{RUNS}/{{exp}}/bench.csv",
        base=f"{RUNS}/{{exp}}/base/result.json",
    output:
        table=report(f"{RESULTS}/tables/{{exp}}.csv", caption="../report/experiment_table.rst",
                     category="Compression"),
        base=f"{RESULTS}/tables/{{exp}}_base.json",
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/experiment_table.py"


rule summary:
    """One Markdown page: every experiment's operating points beside the paper's claims."""
    input:
        expand(f"{RESULTS}/tables/{{exp}}.csv", exp=EXPERIMENTS),
    output:
        f"{RESULTS}/tables/summary.md",
    script:
        "../scripts/summary.py"
