rule finetune:
    """Fine-tune the materialised network without penalty; under torchrun on the experiment's GPUs where it
    runs on CUDA."""
    input:
        search=f"{RUNS}/{{exp}}/seed{{seed}}/search/{{point}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/finetune/{{point}}/result.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/finetune_{{point}}.log",
    benchmark:
        f"{BENCHMARKS}/finetune/{{exp}}_seed{{seed}}_{{point}}.tsv"
    priority: selection_priority
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        search=lambda wc, input: Path(input.search).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} finetune --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--search-dir {params.search} --out {params.out} --no-progress > {log} 2>&1"
