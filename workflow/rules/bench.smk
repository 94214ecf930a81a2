rule bench:
    """Measured speed-ups (batch 1 and batched, interleaved A/B), memory and MACs against the base."""
    input:
        base=f"{RUNS}/{{exp}}/base/result.json",
        finetuned=finetune_results,
    output:
        f"{RUNS}/{{exp}}/bench.csv",
    log:
        f"{RUNS}/{{exp}}/logs/bench.log",
    threads: workflow.cores
    resources:
        bench=1,
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/bench.py"
