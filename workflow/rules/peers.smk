# The peers DARC is compared with (the experiment's `peers.methods`; darc.peers): the SSS peer runs through
# the `search` and `finetune` rules (point sss-lam<L>); the rules below build the others for every chosen
# DARC point lam<L>, each with the training DARC got after the base.


rule peer_random:
    """DARC's decisions at the point (counts of dropped, kept and replaced slots, by alternative) dealt to
    random slots, built from the base and fine-tuned for DARC's search plus fine-tune epochs."""
    input:
        base=base_weights,
        search=f"{RUNS}/{{exp}}/seed{{seed}}/search/lam{{lam}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/random/lam{{lam}}/result.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/random_lam{{lam}}.log",
    benchmark:
        f"{BENCHMARKS}/peer_random/{{exp}}_seed{{seed}}_lam{{lam}}.tsv"
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        base=lambda wc, input: Path(input.base).parent,
        search=lambda wc, input: Path(input.search).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer random --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--base {params.base} --search-dir {params.search} --out {params.out} --no-progress > {log} 2>&1"


rule peer_scratch:
    """DARC's architecture at the point, re-initialised and trained with the base recipe for the base's plus
    DARC's search and fine-tune epochs."""
    input:
        search=f"{RUNS}/{{exp}}/seed{{seed}}/search/lam{{lam}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/scratch/lam{{lam}}/result.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/scratch_lam{{lam}}.log",
    benchmark:
        f"{BENCHMARKS}/peer_scratch/{{exp}}_seed{{seed}}_lam{{lam}}.tsv"
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        search=lambda wc, input: Path(input.search).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer scratch --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--search-dir {params.search} --out {params.out} --no-progress > {log} 2>&1"


rule peer_prune:
    """Torch-Pruning (group L1 magnitude, iterative) of the base until it matches the fine-tuned DARC point on
    measured latency (alone on the machine, A/B against the DARC network), parameter bytes or MACs."""
    input:
        base=base_weights,
        darc=f"{RUNS}/{{exp}}/seed{{seed}}/finetune/lam{{lam}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/tp/{{match}}-lam{{lam}}/prune.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/prune_{{match}}-lam{{lam}}.log",
    benchmark:
        f"{BENCHMARKS}/peer_prune/{{exp}}_seed{{seed}}_{{match}}-lam{{lam}}.tsv"
    threads: lambda wc: workflow.cores if is_timing(wc) else 1
    resources:
        bench=lambda wc: int(is_timing(wc)),
        gpu=lambda wc: timing_gpus(wc) if is_timing(wc) else 0,
    params:
        darc=f"{PYTHON} -m darc.cli",
        scale=SCALE,
        base=lambda wc, input: Path(input.base).parent,
        darc_dir=lambda wc, input: Path(input.darc).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer prune --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--base {params.base} --finetune-dir {params.darc_dir} --match {wildcards.match} --out {params.out} "
        "> {log} 2>&1"


rule peer_prune_finetune:
    """Fine-tune a Torch-Pruning network for DARC's search plus fine-tune epochs."""
    input:
        prune=f"{RUNS}/{{exp}}/seed{{seed}}/tp/{{match}}-lam{{lam}}/prune.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/tp/{{match}}-lam{{lam}}/finetune/result.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/prune_finetune_{{match}}-lam{{lam}}.log",
    benchmark:
        f"{BENCHMARKS}/peer_prune_finetune/{{exp}}_seed{{seed}}_{{match}}-lam{{lam}}.tsv"
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        prune=lambda wc, input: Path(input.prune).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer prune-finetune --config {input.exp} --set seed={wildcards.seed} "
        "--scale {params.scale} --prune-dir {params.prune} --out {params.out} --no-progress > {log} 2>&1"
