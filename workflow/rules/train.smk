rule train_base:
    """Train the base network of one seed (resumes from its checkpoint after a kill)."""
    input:
        f"{RUNS}/{{exp}}/data.json",
    output:
        result=f"{RUNS}/{{exp}}/seed{{seed}}/base/result.json",
        weights=f"{RUNS}/{{exp}}/seed{{seed}}/base/model.pt",
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/train_base.log",
    benchmark:
        f"{BENCHMARKS}/train_base/{{exp}}_seed{{seed}}.tsv"
    threads: 1
    params:
        exp=seeded,
        scale=SCALE,
    script:
        "../scripts/train_base.py"
