rule finetune:
    """Fine-tune the materialised network without penalty, with the post-compression recipe (darc.recipe:
    distillation from the base where it is on; the first seed's reference with each of its recipes, keeping
    the best on validation, the other seeds' references with that one); under torchrun on the experiment's
    GPUs where it runs on CUDA."""
    input:
        base=base_weights,
        search=f"{RUNS}/{{exp}}/seed{{seed}}/search/{{point}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
        recipe_from=reference_recipe_choice,
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
        base=lambda wc, input: Path(input.base).parent,
        out=lambda wc, output: Path(output[0]).parent,
        recipe_from=lambda wc, input: f"--recipe-from {Path(input.recipe_from).parent}" if input.recipe_from else "",
    shell:
        "{params.darc} finetune --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--search-dir {params.search} --base {params.base} --out {params.out} {params.recipe_from} --no-progress > {log} 2>&1"
