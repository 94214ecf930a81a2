rule bench:
    """Measured speed-ups (batch 1 and batched, interleaved A/B), memory and MACs against the base, for
    every fine-tuned DARC network (the first seed's grid and the chosen points at the other seeds) and every
    peer, in one timing job alone on the machine."""
    input:
        base=lambda wc: f"{RUNS}/{wc.exp}/seed{seeds(wc.exp)[0]}/base/result.json",
        finetuned=point_finetunes,
        grid_peers=grid_peer_runs,
        peers=peer_runs,
    output:
        f"{RUNS}/{{exp}}/bench.csv",
    conda:
        "../envs/darc.yaml"
    log:
        f"{RUNS}/{{exp}}/logs/bench.log",
    benchmark:
        f"{BENCHMARKS}/bench/{{exp}}.tsv"
    threads: workflow.cores
    resources:
        bench=1,
        gpu=timing_gpus,
    params:
        exp=lambda wc: EXPERIMENTS[wc.exp],
        scale=SCALE,
    script:
        "../scripts/bench.py"
