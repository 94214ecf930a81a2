rule data_check:
    """Fail early, with the documented message, when an experiment's dataset is missing."""
    output:
        f"{RUNS}/{{exp}}/data.json",
    log:
        f"{RUNS}/{{exp}}/logs/data.log",
    benchmark:
        f"{BENCHMARKS}/data_check/{{exp}}.tsv"
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/data_check.py"
