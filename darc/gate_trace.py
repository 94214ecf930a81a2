"""Reading a search's gate log (``gates.jsonl``, written by :class:`darc.search.GateLog`): the gates at one
logged time, and whether they had settled by the search's end.

A decision of the search is which candidates of a slot keep a non-zero gate (all zero: the slot is dropped;
several: the strongest is kept, :func:`darc.compressor.keep_strongest_candidate_`). :func:`settling` says
whether that set of live candidates still changed in the last part of the search, and by how much any gate
still moved there: a search whose live sets changed late had not settled, and another CPU's rounding could
end it on either side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A candidate's gate, by slot and candidate label.
Gates = dict[str, dict[str, float]]


def read_gate_log(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``gates.jsonl`` file (a search folder is read as its ``gates.jsonl``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "gates.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no gate log at {path}: pass a search folder that holds gates.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def logged_times(rows: list[dict[str, Any]]) -> list[float]:
    """Every time the log holds gates at, in epochs since the search began, ascending."""
    return sorted({float(r["t"]) for r in rows})


def gates_at(rows: list[dict[str, Any]], t: float) -> Gates:
    """Every gate logged at time ``t`` (slot -> candidate -> |gate|)."""
    out: Gates = {}
    for r in rows:
        if float(r["t"]) == t:
            out.setdefault(r["slot"], {})[r["candidate"]] = abs(float(r["gate"]))
    return out


@dataclass(frozen=True)
class Settling:
    """How the gates moved between ``t_from`` and the log's last time ``t_to``."""

    t_from: float
    t_to: float
    max_change: float  #: the largest |gate(t_to) - gate(t_from)| of any candidate
    largest: str  #: ``slot/candidate`` of that change
    zeroed: tuple[str, ...]  #: ``slot/candidate`` live at ``t_from`` and zero at ``t_to``
    revived: tuple[str, ...]  #: zero at ``t_from`` and live at ``t_to``

    @property
    def settled(self) -> bool:
        """No slot's set of live candidates changed in the window."""
        return not self.zeroed and not self.revived


def settling(rows: list[dict[str, Any]], window: float = 1 / 3) -> Settling:
    """Compare the gates at the log's last time with those at the latest logged time at least ``window`` (a
    fraction of the logged span) before it: the last third of the search by default."""
    if not 0 < window <= 1:
        raise ValueError(f"window must lie in (0, 1], got {window}")
    times = logged_times(rows)
    if len(times) < 2:
        raise ValueError("the gate log holds fewer than two times: log gates more often "
                         "(search.log_gates_every) to see whether they settled")
    t_to = times[-1]
    cut = t_to - window * (t_to - times[0])
    t_from = max(t for t in times[:-1] if t <= cut + 1e-9)  # times[0] <= cut, as window <= 1
    start, end = gates_at(rows, t_from), gates_at(rows, t_to)
    change, largest, zeroed, revived = 0.0, "", [], []
    for slot, gates in end.items():
        for cand, g in gates.items():
            g0 = start.get(slot, {}).get(cand, 0.0)
            if abs(g - g0) > change:
                change, largest = abs(g - g0), f"{slot}/{cand}"
            if g0 != 0 and g == 0:
                zeroed.append(f"{slot}/{cand}")
            elif g0 == 0 and g != 0:
                revived.append(f"{slot}/{cand}")
    return Settling(t_from=t_from, t_to=t_to, max_change=round(change, 6), largest=largest,
                    zeroed=tuple(sorted(zeroed)), revived=tuple(sorted(revived)))
