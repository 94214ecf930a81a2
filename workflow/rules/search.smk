rule latency_table:
    """The latency lookup table of an experiment's candidates: the versioned table of the config (a copy; an
    entry it lacks is timed in this job), or, without one, every entry measured alone on the machine."""
    input:
        data=f"{RUNS}/{{exp}}/data.json",
        versioned=versioned_table,
    output:
        f"{RUNS}/{{exp}}/latency_table.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/latency_table.log",
    benchmark:
        f"{BENCHMARKS}/latency_table/{{exp}}.tsv"
    priority: 15
    # Alone on the machine only when it times the whole table: a job that needs every core waits until no
    # other job runs, which one-job-per-core scheduling may never give it while work remains.
    threads: lambda wc: 1 if versioned_table(wc) else workflow.cores
    resources:
        bench=lambda wc: 0 if versioned_table(wc) else 1,
        gpu=lambda wc: 0 if versioned_table(wc) else timing_gpus(wc),
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/latency_table.py"


rule gate:
    """Gate the base and distill its alternatives once per seed: every lambda's DARC search of the seed (and
    the cost-model ablations, whose candidates are DARC's) starts from it instead of distilling again."""
    input:
        base=base_weights,
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
    output:
        f"{RUNS}/{{exp}}/seed{{seed}}/gated/start.pt",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/gate.log",
    benchmark:
        f"{BENCHMARKS}/gate/{{exp}}_seed{{seed}}.tsv"
    priority: selection_priority
    threads: 1
    params:
        python=PYTHON,
        scale=SCALE,
        base=lambda wc, input: Path(input.base).parent,
    shell:
        "{params.python} -m darc.cli gate --config {input.exp} --set seed={wildcards.seed} --scale {params.scale} "
        "--base {params.base} --out {output} > {log} 2>&1"


rule search:
    """Train weights and gates under the penalty at one lambda (or the equal-budget reference), then
    materialise; under torchrun on the experiment's GPUs where it runs on CUDA (costs measured by rank 0)."""
    input:
        base=base_weights,
        table=f"{RUNS}/{{exp}}/latency_table.json",
        exp=f"{RUNS}/{{exp}}/experiment.yaml",
        start=gated_start,
    output:
        result=f"{RUNS}/{{exp}}/seed{{seed}}/search/{{point}}/result.json",
        gates=f"{RUNS}/{{exp}}/seed{{seed}}/search/{{point}}/gates.jsonl",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/seed{{seed}}/search_{{point}}.log",
    benchmark:
        f"{BENCHMARKS}/search/{{exp}}_seed{{seed}}_{{point}}.tsv"
    priority: selection_priority
    threads: 1
    resources:
        gpu=training_gpus,
    params:
        darc=darc_command,
        scale=SCALE,
        point=lambda wc: search_point_options(wc.point),
        start=lambda wc, input: f"--start {input.start}" if input.start else "",
        base=lambda wc, input: Path(input.base).parent,
        out=lambda wc, output: Path(output.result).parent,
    shell:
        "{params.darc} search --config {input.exp} --set seed={wildcards.seed} "
        "--set search.latency_table={input.table} --scale {params.scale} {params.point} {params.start} --base {params.base} "
        "--out {params.out} --no-progress > {log} 2>&1"


checkpoint select_points:
    """Operating points ("no loss", "about 1 % loss") chosen on the first seed's validation accuracy
    against its equal-budget reference; the chosen lambdas are then rerun at the other seeds."""
    input:
        finetuned=first_seed_runs("finetune"),
        reference=lambda wc: f"{RUNS}/{wc.exp}/seed{seeds(wc.exp)[0]}/finetune/reference/result.json",
    output:
        f"{RUNS}/{{exp}}/operating_points.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/select_points.log",
    benchmark:
        f"{BENCHMARKS}/select_points/{{exp}}.tsv"
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
    script:
        "../scripts/select_points.py"
