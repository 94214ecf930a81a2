"""A lambda path that grades: refine a lambda grid where the architecture jumps.

With frozen weights, a slot's gates settle where the loss's pull balances the penalty, so a slot is dropped
once lambda exceeds a threshold set by how much its output matters against its cost (for a lone gate in a
squared loss, ``2 E / c``). Slots of similar importance and equal cost (a WRN's branches) cross within a
narrow window, so a coarse grid jumps from every slot replaced to every slot dropped, and no network that
drops some and replaces others, the kind that trades best, is ever seen. :func:`refine_path` searches the
grid, then bisects (geometric mean) between neighbouring lambdas whose decisions differ in more than one
slot, widest gap first, until every step changes at most one slot or the search budget is spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

#: A search's decisions: slot name -> the labels of the candidates it keeps (empty: dropped).
Decisions = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class PathPoint:
    """One search of the path: its lambda, decisions and whether the refinement added it."""

    lam: float
    kept: dict[str, list[str]] = field(compare=False)
    refined: bool = False

    @property
    def dropped(self) -> int:
        return sum(1 for labels in self.kept.values() if not labels)

    @property
    def replaced(self) -> int:
        return sum(1 for labels in self.kept.values() if labels and "original" not in labels)

    @property
    def mixes_drops_and_replacements(self) -> bool:
        """Some slots dropped and some replaced by an alternative in one network."""
        return self.dropped > 0 and self.replaced > 0


def decision_distance(a: Decisions, b: Decisions) -> int:
    """Slots whose kept candidates differ between two searches' decisions."""
    if set(a) != set(b):
        raise ValueError(f"decisions over different slots: {sorted(set(a) ^ set(b))}")
    return sum(1 for name in a if sorted(a[name]) != sorted(b[name]))


def refine_path(
    search: Callable[[float], Decisions], lams: Sequence[float], *, max_searches: int = 6,
    min_ratio: float = 1.02,
) -> list[PathPoint]:
    """Search every lambda of ``lams`` (``search(lam)`` returns its decisions), then add up to
    ``max_searches`` lambdas, each the geometric mean of the neighbouring pair with the widest log-gap among
    those whose decisions differ in more than one slot and whose ratio exceeds ``min_ratio``. Returns the
    path sorted by lambda (refined points flagged). Lambda 0 is searched but never bisected against."""
    if max_searches < 0 or min_ratio <= 1:
        raise ValueError("max_searches must be >= 0 and min_ratio > 1")
    points = {float(lam): PathPoint(float(lam), _plain(search(float(lam)))) for lam in lams}
    for _ in range(max_searches):
        ordered = sorted(points.values(), key=lambda p: p.lam)
        gaps = [(math.log(b.lam / a.lam), a, b) for a, b in zip(ordered, ordered[1:])
                if a.lam > 0 and b.lam / a.lam > min_ratio and decision_distance(a.kept, b.kept) > 1]
        if not gaps:
            break
        _, lo, hi = max(gaps, key=lambda g: g[0])
        mid = math.sqrt(lo.lam * hi.lam)
        points[mid] = PathPoint(mid, _plain(search(mid)), refined=True)
    return sorted(points.values(), key=lambda p: p.lam)


def _plain(kept: Decisions) -> dict[str, list[str]]:
    return {name: list(labels) for name, labels in kept.items()}
