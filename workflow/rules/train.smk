rule train_base:
    """Train the base network of one seed (resumes from its checkpoint after a kill); under torchrun on the
    experiment's GPUs where it runs on CUDA."""
    input:
        data=f"{RUNS}/{{exp}}/data.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        result=f"{RUNS}/{{exp}}/seed{{seed}}/base/result.json",
        weights=f"{RUNS}/{{exp}}/seed{{seed}}/base/model.pt",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/train_base.log",
    benchmark:
        f"{BENCHMARKS}/train_base/{{exp}}_seed{{seed}}.tsv"
    priority: 20  # the critical path starts here
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        out=lambda wc, output: Path(output.result).parent,
    shell:
        "{params.darc} train --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--out {params.out} --no-progress > {log} 2>&1"
