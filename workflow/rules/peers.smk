# The peers DARC is compared with (the experiment's `peers.methods`; darc.peers): the grid peers (SSS, DARC
# at uniform cost or with the params / MACs cost model) run through the `search` and `finetune` rules (point
# <method>-lam<L>); the rules below build the others for every chosen DARC point lam<L> that changes the
# base's architecture (common.smk, peer_lams), each with the training DARC got after the base.


rule peer_random:
    """DARC's decisions at the point (counts of dropped, kept and replaced slots, by alternative) dealt to
    random slots, built from the seed's gated start (the alternatives DARC's searches started from) and
    fine-tuned for DARC's search plus fine-tune epochs."""
    input:
        base=base_weights,
        search=f"{RUNS}/{{exp}}/seed{{seed}}/search/lam{{lam}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
        start=f"{RUNS}/{{exp}}/seed{{seed}}/gated/start.pt",
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
        "--base {params.base} --search-dir {params.search} --start {input.start} --out {params.out} --no-progress "
        "> {log} 2>&1"


rule peer_scratch:
    """DARC's architecture at the point, re-initialised and trained with the base recipe for the base's plus
    DARC's search and fine-tune images (distilled from the base where the fine-tune recipe is)."""
    input:
        base=base_weights,
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
    priority: 10  # the longest peer: start it as soon as its point is chosen
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        search=lambda wc, input: Path(input.search).parent,
        base=lambda wc, input: Path(input.base).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer scratch --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--search-dir {params.search} --base {params.base} --out {params.out} --no-progress > {log} 2>&1"


rule peer_bn_sparsity:
    """Network slimming's sparsity phase for the BN-scale Torch-Pruning peer: the base trained on with an L1
    term on its BatchNorm scales for DARC's search images (one per seed, shared by every point and match)."""
    input:
        base=base_weights,
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/tpbn/sparsity/result.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/bn_sparsity.log",
    benchmark:
        f"{BENCHMARKS}/peer_bn_sparsity/{{exp}}_seed{{seed}}.tsv"
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        base=lambda wc, input: Path(input.base).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer bn-sparsity --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--base {params.base} --out {params.out} --no-progress > {log} 2>&1"


rule peer_prune:
    """Torch-Pruning of the base until it matches the fine-tuned DARC point on measured latency (A/B against the
    DARC network, with at most one training job beside it), parameter bytes or MACs: family `tp` group L1
    magnitude of the trained base, `tpbn` BN-scale (network slimming) of the sparsity phase's output."""
    input:
        base=prune_start,
        darc=f"{RUNS}/{{exp}}/seed{{seed}}/finetune/lam{{lam}}/result.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/{{family}}/{{match}}-lam{{lam}}/prune.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/prune_{{family}}_{{match}}-lam{{lam}}.log",
    benchmark:
        f"{BENCHMARKS}/peer_prune/{{exp}}_seed{{seed}}_{{family}}_{{match}}-lam{{lam}}.tsv"
    threads: matching_threads
    resources:
        bench=lambda wc: int(is_timing(wc)),
        gpu=lambda wc: timing_gpus(wc) if is_timing(wc) else 0,
    params:
        darc=f"{PYTHON} -m darc.cli",
        scale=SCALE,
        base=lambda wc, input: Path(input.base).parent,
        darc_dir=lambda wc, input: Path(input.darc).parent,
        pruner=lambda wc: PRUNE_FAMILIES[wc.family],
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer prune --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--base {params.base} --finetune-dir {params.darc_dir} --match {wildcards.match} "
        "--pruner {params.pruner} --out {params.out} > {log} 2>&1"


rule peer_prune_finetune:
    """Fine-tune a Torch-Pruning network: for DARC's search plus fine-tune images (`tp`), or for DARC's
    fine-tune images after the sparsity phase took its search images (`tpbn`)."""
    input:
        base=base_weights,
        prune=f"{RUNS}/{{exp}}/seed{{seed}}/{{family}}/{{match}}-lam{{lam}}/prune.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/{{family}}/{{match}}-lam{{lam}}/finetune/result.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/prune_finetune_{{family}}_{{match}}-lam{{lam}}.log",
    benchmark:
        f"{BENCHMARKS}/peer_prune_finetune/{{exp}}_seed{{seed}}_{{family}}_{{match}}-lam{{lam}}.tsv"
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        prune=lambda wc, input: Path(input.prune).parent,
        base=lambda wc, input: Path(input.base).parent,
        out=lambda wc, output: Path(output[0]).parent,
    shell:
        "{params.darc} peer prune-finetune --config {input.exp} --set seed={wildcards.seed} "
        "--scale {params.scale} --prune-dir {params.prune} --base {params.base} --out {params.out} --no-progress > {log} 2>&1"
