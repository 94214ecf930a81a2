"""The table of the contention record's README from its four train_precision records (written by
``benchmarks/studies/contention.sh``).

    python3 benchmarks/studies/contention_summary.py [RECORD]   # RECORD: benchmarks/measured/2026-11-28-contention
"""
import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / "measured" / "2026-11-28-contention"
RECORD = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
ARMS = ("alone_1t", "pair_a", "pair_b", "alone_2t")
rec = {a: {r["model"]: r for r in json.loads((RECORD / a / "train_precision.json").read_text())["rows"]}
       for a in ARMS}
for model in rec["alone_1t"]:
    for key in ("img_per_s_bfloat16_channels_last", "img_per_s_float32"):
        v = {a: rec[a][model][key] for a in ARMS}
        print(f"{model:16s} {key.removeprefix('img_per_s_'):24s} alone 1t {v['alone_1t']:5.0f}  pair "
              f"{v['pair_a']:5.0f}, {v['pair_b']:5.0f}  alone 2t {v['alone_2t']:5.0f}  pair each / alone "
              f"{(v['pair_a'] + v['pair_b']) / 2 / v['alone_1t']:.2f}  pair sum / 2t "
              f"{(v['pair_a'] + v['pair_b']) / v['alone_2t']:.2f}")
