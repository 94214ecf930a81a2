rule experiment_table:
    """Every run of an experiment (bases, equal-budget references, DARC at each lambda and seed) and, per
    operating point, mean +- std over seeds against the references; the paper's claims as reference columns."""
    input:
        bench=f"{RUNS}/{{exp}}/bench.csv",
        bases=lambda wc: expand(f"{RUNS}/{wc.exp}/seed{{seed}}/base/result.json", seed=base_seeds(wc.exp)),
        references=per_seed(f"{RUNS}/{{exp}}/seed{{seed}}/finetune/reference/result.json"),
        points=f"{RUNS}/{{exp}}/operating_points.json",
    output:
        runs=report(f"{RESULTS}/tables/{{exp}}.csv", caption="../report/experiment_table.rst",
                    category="Compression"),
        points=report(f"{RESULTS}/tables/{{exp}}_points.csv", caption="../report/points_table.rst",
                      category="Compression"),
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/experiment_table.log",
    benchmark:
        f"{BENCHMARKS}/experiment_table/{{exp}}.tsv"
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
    script:
        "../scripts/experiment_table.py"


rule summary:
    """One Markdown page: every experiment's operating points (mean +- std over seeds) against the
    equal-budget reference and the raw base, its lambda grid, and the paper's claims."""
    input:
        runs=expand(f"{RESULTS}/tables/{{exp}}.csv", exp=EXPERIMENTS),
        points=expand(f"{RESULTS}/tables/{{exp}}_points.csv", exp=EXPERIMENTS),
    output:
        report(f"{RESULTS}/tables/summary.md", caption="../report/summary.rst", category="Compression"),
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/logs/summary.log",
    benchmark:
        f"{BENCHMARKS}/summary/summary.tsv"
    script:
        "../scripts/summary.py"

