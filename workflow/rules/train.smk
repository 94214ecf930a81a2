rule train_base:
    """Train the base network (resumes from its checkpoint after a kill)."""
    input:
        f"{RUNS}/{{exp}}/data.json",
    output:
        result=f"{RUNS}/{{exp}}/base/result.json",
        weights=f"{RUNS}/{{exp}}/base/model.pt",
    log:
        f"{RUNS}/{{exp}}/logs/train_base.log",
    threads: 1
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/train_base.py"
