"""DARC's own decisions through the random-decisions peer's path: is it the slot DARC chose, or its search,
that costs accuracy?

The random peer builds its network from the trained base with every kept candidate's gate at 1 (the
alternatives distilled as before a search) and fine-tunes it for DARC's search plus fine-tune images. This
runs the same path with DARC's decisions *not* shuffled, so against the random peer it varies only which
slots change, and against DARC only the search (gates shrunk under the penalty, then folded) and the
fine-tune's length.

    python benchmarks/studies/own_decisions.py --run runs/default/cifar_wrn --point lam2 --seeds 0 2 --out OUT
    python benchmarks/studies/own_decisions.py ... --budget finetune   # only DARC's fine-tune images (as DARC's own)

Writes ``OUT/seed<S>/`` (the peer's usual outputs, ``result.json`` included) and prints one line per seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from darc.config import load_experiment
from darc.peers import stages


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/cifar_wrn")
    ap.add_argument("--point", required=True, help="the search folder name of the point, e.g. lam2")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--base-seed", type=int, default=0, help="the seed whose base is shared (shared_base)")
    ap.add_argument("--budget", choices=["peer", "finetune"], default="peer",
                    help="peer: DARC's search plus fine-tune images (the peers' budget); finetune: its fine-tune's")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    run = Path(args.run)
    stages.draw_random_decisions = lambda decisions, allowed, seed, **_: dict(decisions)  # DARC's own deal
    if args.budget == "finetune":
        from darc.recipe import finetune_recipe

        stages.peer_recipe = finetune_recipe  # DARC's fine-tune recipe and images, not its search's too
    for seed in args.seeds:
        exp = load_experiment(run / "experiment.yaml", [f"seed={seed}"])
        res = stages.random_decisions(exp, run / f"seed{args.base_seed}" / "base",
                                      run / f"seed{seed}" / "search" / args.point,
                                      Path(args.out) / f"seed{seed}", progress=False)
        print(f"seed {seed}: val {res.get('val_acc')} test {res.get('test_acc')}", flush=True)


if __name__ == "__main__":
    main()
