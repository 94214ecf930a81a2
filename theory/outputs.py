"""Writing results: tidy CSV, figures with their provenance embedded, provenance sidecars.

Self-contained on purpose (``theory`` does not import ``darc``). Files are written to a temporary
name beside the target and renamed, so an interrupted job never leaves a half-written output.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES = ("numpy", "scipy", "sympy", "pandas", "matplotlib", "torch", "snakemake")


#: The paths whose uncommitted changes would make a theory result differ from its commit.
SOURCES = ("theory", "notebooks", "config/theory.yaml", "workflow/rules/theory.smk", "workflow/scripts/theory_*",
           "pyproject.toml")


def git_commit() -> str:
    """``git rev-parse HEAD`` of the repository holding this package, ``-dirty`` if a file the theory
    results depend on (:data:`SOURCES`) has uncommitted changes (other parts of the tree do not count)."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCES], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(*, scale: str, config: Mapping[str, Any], seeds: Any = None, **extra: Any) -> dict[str, Any]:
    """What produced a result: scale, seeds, the resolved config, versions, git commit, machine."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale": scale,
        "stand_in": True,  # synthetic data: the theory checks, not the paper's (unreleased) experiments
        "seeds": seeds,
        "config": dict(config),
        "versions": versions(),
        "git_commit": git_commit(),
        "hostname": platform.node(),
        "machine": platform.machine(),
        **extra,
    }


@contextmanager
def _atomic(path: str | Path, suffix: str = ""):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    with _atomic(path, ".csv") as tmp:
        df.to_csv(tmp, index=False)


def write_text(text: str, path: str | Path) -> None:
    with _atomic(path, Path(path).suffix) as tmp:
        tmp.write_text(text)


def write_json(obj: Any, path: str | Path) -> None:
    with _atomic(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_figure(fig, paths: Iterable[str | Path], prov: Mapping[str, Any]) -> None:
    """Save ``fig`` to each path (format from the suffix) with the provenance JSON in its metadata.

    PNG: text chunk ``Description``; PDF: the ``Subject`` field (``Keywords`` says what it holds).
    """
    text = json.dumps(prov, sort_keys=True, default=str)
    for path in paths:
        suffix = Path(path).suffix.lower()
        meta = ({"Description": text, "Software": "darc theory"} if suffix == ".png"
                else {"Subject": text, "Keywords": "provenance-json-in-subject", "Creator": "darc theory"})
        with _atomic(path, suffix) as tmp:
            fig.savefig(tmp, format=suffix.lstrip("."), metadata=meta, dpi=150, bbox_inches="tight")
