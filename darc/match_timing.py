"""A latency-matched peer timed against the DARC network it was matched to: in this process, or in several fresh
ones and read on the median.

One interleaved A/B session cancels the machine's drift within it, not what is fixed for a process (where the
allocator placed each network's tensors, which kernels were picked): on a 2-core Xeon one fixed pair of networks
read 0.88-1.20 at batch 64 across fresh processes, with narrow quartiles inside each
(``benchmarks/measured/2026-12-08-ab-sessions``). With ``sessions`` > 1 each session is a fresh
``python -m darc.match_timing`` process that loads both networks from their folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn


def one_session(darc: nn.Module, peer: nn.Module, input_shape: tuple[int, ...], batch: int, *, threads: int,
                pairs: int, min_block_time: float, device: str = "cpu") -> dict[str, float]:
    """One interleaved A/B session here: t(DARC) / t(peer), its median and quartiles."""
    from darc.bench.latency import compare_latency

    ab = compare_latency(darc, peer, input_shape, batch, pairs=pairs, device=device, threads=threads,
                         min_block_time=min_block_time)
    return {"ratio": float(ab.ratio_median), "q25": float(ab.ratio_q25), "q75": float(ab.ratio_q75)}


def session_in_fresh_process(darc_dir: str | Path, peer_dir: str | Path, input_shape: Sequence[int], batch: int, *,
                             threads: int, pairs: int, min_block_time: float, device: str = "cpu"
                             ) -> dict[str, float]:
    """:func:`one_session` in a new Python process that loads both fine-tuned networks from their folders."""
    cmd = [sys.executable, "-m", "darc.match_timing", str(darc_dir), str(peer_dir),
           "--shape", ",".join(str(s) for s in input_shape), "--batch", str(batch), "--threads", str(threads),
           "--pairs", str(pairs), "--min-block-time", str(min_block_time), "--device", device]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"timing session {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def match_against_darc(
    darc: nn.Module, peer: nn.Module, input_shape: tuple[int, ...], batch: int, *, threads: int, pairs: int,
    min_block_time: float, device: str = "cpu", sessions: int = 1, darc_dir: str | Path | None = None,
    peer_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The peer's speed-up over DARC, t(DARC) / t(peer) (1 where the match holds exactly), as
    ``match_speedup_b<batch>``: one session in this process, or the median of ``sessions`` fresh processes
    (then ``darc_dir`` and ``peer_dir`` are needed to load the networks there). Also ``_iqr`` (the median
    within-session quartile range), ``_range`` (max - min over sessions) and ``match_sessions``."""
    if sessions < 1:
        raise ValueError(f"sessions must be >= 1, got {sessions}")
    if sessions == 1:
        done = [one_session(darc, peer, input_shape, batch, threads=threads, pairs=pairs,
                            min_block_time=min_block_time, device=device)]
    elif darc_dir is None or peer_dir is None:
        raise ValueError("timing in several processes loads the networks from their folders: pass darc_dir and "
                         "peer_dir, or sessions=1")
    else:
        done = [session_in_fresh_process(darc_dir, peer_dir, input_shape, batch, threads=threads, pairs=pairs,
                                         min_block_time=min_block_time, device=device) for _ in range(sessions)]
    ratios = [d["ratio"] for d in done]
    return {f"match_speedup_b{batch}": statistics.median(ratios),
            f"match_speedup_b{batch}_iqr": statistics.median(d["q75"] - d["q25"] for d in done),
            f"match_speedup_b{batch}_range": max(ratios) - min(ratios), "match_sessions": sessions}


def main(argv: list[str] | None = None) -> None:
    """The child of :func:`session_in_fresh_process`: one session, its JSON on the last line of stdout."""
    ap = argparse.ArgumentParser(description="one interleaved A/B session: DARC's network against a peer's")
    ap.add_argument("darc_dir")
    ap.add_argument("peer_dir")
    ap.add_argument("--shape", required=True, help="input shape without the batch, e.g. 1,28,28")
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--pairs", type=int, required=True)
    ap.add_argument("--min-block-time", type=float, required=True)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)

    import torch

    from darc.peers.loading import load_finetuned

    torch.set_num_threads(args.threads)
    darc, peer = load_finetuned(args.darc_dir).eval(), load_finetuned(args.peer_dir).eval()
    shape = tuple(int(s) for s in args.shape.split(","))
    print(json.dumps(one_session(darc, peer, shape, args.batch, threads=args.threads, pairs=args.pairs,
                                 min_block_time=args.min_block_time, device=args.device)))


if __name__ == "__main__":
    main()
