"""What would a run's wall time be without some of its jobs? A model over the run's own per-job records.

Reads Snakemake's ``benchmark:`` records of a finished run (``runs/<scale>/benchmarks/<rule>/<job>.tsv``) and
models its wall time as the timing jobs' seconds (``latency_table`` and ``bench``: each has the machine to
itself) plus every other job's seconds over the cores (the 1-thread jobs pack them; a latency-matching
``peer_prune`` job holds all cores but one, which on two cores packs like a 1-thread job). Jobs whose
``<rule>/<job>`` matches a ``--drop`` regular expression are left out, to price a config cut before a run
spends 90 minutes on it. A model, not a run: it ignores the critical path (a long job that starts late) and
the idle seconds while the DAG waits on a checkpoint; check it against the run's Snakemake "Elapsed time"
(``--elapsed``) before trusting a prediction.

    python benchmarks/tools/wall_model.py --runs runs/default --elapsed 1:34:47 \
        --drop 'search/cifar_wrn_seed0_lam0.25$' --drop 'finetune/cifar_wrn_seed0_lam0.25$'
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

#: Jobs that run alone on the machine (``threads: workflow.cores``): ``<rule>/<job>`` regular expressions.
TIMING_JOBS: tuple[str, ...] = (r"^bench/", r"^latency_table/")


@dataclass(frozen=True)
class WallModel:
    """Seconds of the timing jobs and of the packed jobs, and the model's wall time on ``cores``."""

    timing_s: float
    packed_s: float
    jobs: int
    cores: int

    @property
    def wall_s(self) -> float:
        return self.timing_s + self.packed_s / self.cores


def job_seconds(benchmarks: str | Path) -> dict[str, float]:
    """``<rule>/<job>`` -> wall seconds, from every ``<benchmarks>/<rule>/<job>.tsv``."""
    root = Path(benchmarks)
    records = sorted(root.glob("*/*.tsv"))
    if not records:
        raise SystemExit(f"no benchmark records under {root}: pass --runs <the run's folder, e.g. runs/default>")
    return {f"{p.parent.name}/{p.stem}": float(p.read_text().splitlines()[1].split("\t")[0]) for p in records}


def model(seconds: dict[str, float], cores: int, drop: list[str] = ()) -> WallModel:
    """The wall-time model of the jobs in ``seconds`` that match none of ``drop`` (regular expressions)."""
    kept = {k: s for k, s in seconds.items() if not any(re.search(d, k) for d in drop)}
    timing = sum(s for k, s in kept.items() if any(re.search(t, k) for t in TIMING_JOBS))
    return WallModel(timing_s=timing, packed_s=sum(kept.values()) - timing, jobs=len(kept), cores=cores)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="the run's folder, holding benchmarks/ (e.g. runs/default)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--drop", action="append", default=[], help="regex on <rule>/<job>; repeatable")
    ap.add_argument("--elapsed", help="the run's Snakemake 'Elapsed time' (h:mm:ss), to check the model on")
    args = ap.parse_args(argv)
    seconds = job_seconds(Path(args.runs) / "benchmarks")
    whole, cut = model(seconds, args.cores), model(seconds, args.cores, args.drop)
    print(f"run: {whole.jobs} jobs, {whole.timing_s:.0f} s alone + {whole.packed_s:.0f} s packed on "
          f"{args.cores} cores: model {_clock(whole.wall_s)}")
    if args.elapsed:
        h, m, s = (int(x) for x in args.elapsed.split(":"))
        actual = 3600 * h + 60 * m + s
        print(f"elapsed: {_clock(actual)} (model / elapsed {whole.wall_s / actual:.3f})")
    if args.drop:
        print(f"without {whole.jobs - cut.jobs} dropped jobs: {cut.timing_s:.0f} s alone + {cut.packed_s:.0f} s "
              f"packed: model {_clock(cut.wall_s)} ({whole.wall_s - cut.wall_s:.0f} s less)")


if __name__ == "__main__":
    main()
