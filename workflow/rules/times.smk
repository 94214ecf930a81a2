# Included last: its input is every other output.
rule rule_times:
    """Where the time went: every job's Snakemake `benchmark:` record, summed per rule."""
    input:
        EXPERIMENT_OUTPUTS,
        THEORY_OUTPUTS,
    output:
        f"{RESULTS}/tables/rule_times.csv",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/logs/rule_times.log",
    params:
        benchmarks=BENCHMARKS,
    script:
        "../scripts/rule_times.py"
