rule data_check:
    """Fail early, with the documented message, when an experiment's dataset is missing."""
    output:
        f"{RUNS}/{{exp}}/data.json",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/data.log",
    benchmark:
        f"{BENCHMARKS}/data_check/{{exp}}.tsv"
    priority: 20  # the bases wait for it, and they are the critical path: before the theory jobs
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/data_check.py"


rule experiment_config:
    """The experiment as this run merged it (scale, config files, --config overrides): the file the `darc`
    commands of the training jobs read, each with its own seed (`--set seed=<S>`)."""
    output:
        f"{RUNS}/{{exp}}/experiment.yaml",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/experiment_config.log",
    benchmark:
        f"{BENCHMARKS}/experiment_config/{{exp}}.tsv"
    priority: 20  # as data_check
    localrule: True
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
    script:
        "../scripts/experiment_config.py"
