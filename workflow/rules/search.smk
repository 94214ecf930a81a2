rule latency_table:
    """Measure every candidate's latency once, alone on the machine (timing jobs never share it)."""
    input:
        f"{RUNS}/{{exp}}/data.json",
    output:
        f"{RUNS}/{{exp}}/search/latency_table.json",
    log:
        f"{RUNS}/{{exp}}/logs/latency_table.log",
    threads: workflow.cores
    resources:
        bench=1,
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/latency_table.py"


rule search:
    """Train weights and gates under the penalty at one lambda, then materialise."""
    input:
        base=f"{RUNS}/{{exp}}/base/model.pt",
        table=f"{RUNS}/{{exp}}/search/latency_table.json",
    output:
        result=f"{RUNS}/{{exp}}/search/lam{{lam}}/result.json",
        gates=f"{RUNS}/{{exp}}/search/lam{{lam}}/gates.jsonl",
    log:
        f"{RUNS}/{{exp}}/logs/search_lam{{lam}}.log",
    threads: 1
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/search.py"
