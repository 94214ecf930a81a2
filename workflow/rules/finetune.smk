rule finetune:
    """Fine-tune the materialised network without penalty."""
    input:
        f"{RUNS}/{{exp}}/search/lam{{lam}}/result.json",
    output:
        f"{RUNS}/{{exp}}/finetune/lam{{lam}}/result.json",
    log:
        f"{RUNS}/{{exp}}/logs/finetune_lam{{lam}}.log",
    threads: 1
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/finetune.py"
