rule finetune:
    """Fine-tune the materialised network without penalty."""
    input:
        f"{RUNS}/{{exp}}/seed{{seed}}/search/{{point}}/result.json",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/finetune/{{point}}/result.json",
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/finetune_{{point}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune/{{exp}}_seed{{seed}}_{{point}}.tsv"
    threads: 1
    params:
        exp=seeded,
        scale=SCALE,
    script:
        "../scripts/finetune.py"
