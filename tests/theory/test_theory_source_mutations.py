"""Mutation test on the source: each wrong bound or estimator, written into a scratch copy of ``theory/``,
makes a named data-driven test fail.

Unlike ``test_theory_mutation.py`` (which scales the bounds' outputs), every entry of :data:`MUTATIONS`
edits the source text itself (the original text must occur exactly once) in a scratch copy of the
theory package, its tests and config; only the named test then runs, in a subprocess, against that
copy, and it must fail (pytest exit status 1: a test failed, not a collection or usage error). A
control run of every named test on the unmutated copy must pass, so a failure means the mutation was
caught and not that the copy is broken. The named tests compare an estimate or a count with a bound
(or check an estimator directly); none pins a hand-computed value of the mutated formula.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("theory", "tests/conftest.py", "tests/theory", "config/theory.yaml", "pyproject.toml")


@dataclass(frozen=True)
class Mutation:
    """One textual edit of one file, and the test that must fail because of it."""

    name: str
    path: str
    original: str
    mutated: str
    test: str  # "<file in tests/theory>::<test>"


MUTATIONS = [
    Mutation("refined weighted bound: every cost squared as the largest", "theory/bounds.py",
             "t**2 / (2 * paid**2)", "t**2 / (2 * paid.max()**2)",
             "test_theory_tightness.py::test_weighted_bounds_hold_for_many_unequal_costs"),
    Mutation("sample points at half the radius B", "theory/empirical.py",
             "return radius * x / np.linalg.norm(x, axis=1, keepdims=True)",
             "return 0.5 * radius * x / np.linalg.norm(x, axis=1, keepdims=True)",
             "test_theory_estimators.py::test_sample_points_have_norm_B"),
    Mutation("Monte-Carlo check 30 standard errors lenient", "theory/checks.py",
             'est - 3 * se.fillna(0.0) > bound', 'est - 30 * se.fillna(0.0) > bound',
             "test_theory_estimators.py::test_a_bound_ten_standard_errors_below_a_monte_carlo_estimate_is_flagged"),
    Mutation("ramp loss clipped at 0.5", "theory/generalisation.py",
             "np.clip(1.0 - np.asarray(margin, dtype=float), 0.0, 1.0)",
             "np.clip(1.0 - np.asarray(margin, dtype=float), 0.0, 0.5)",
             "test_theory_estimators.py::test_ramp_loss_is_one_at_non_positive_margins"),
    Mutation("linear width term sqrt(ln k) instead of sqrt(2 ln k)", "theory/bounds.py",
             "(1 + sp.sqrt(2 * sp.log(k)))", "(1 + sp.sqrt(sp.log(k)))",
             "test_theory_tightness.py::test_sampled_patterns_exceed_a_sqrt_ln_k_width_term"),
    Mutation("confidence term without its square root", "theory/bounds.py",
             "3 * sp.sqrt(sp.log(2 / delta) / (2 * n))", "3 * (sp.log(2 / delta) / (2 * n))",
             "test_theory_coverage.py::test_the_bound_covers_a_single_function_at_delta"),
    Mutation("confidence term without its log factor", "theory/bounds.py",
             "3 * sp.sqrt(sp.log(2 / delta) / (2 * n))", "3 * sp.sqrt(1 / (2 * n))",
             "test_theory_coverage.py::test_the_bound_covers_a_single_function_at_delta"),
]


def _scratch(dest: Path) -> Path:
    """A copy of the theory package, its tests and config under ``dest`` (no bytecode caches)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for rel in COPIED:
        src, out = ROOT / rel, dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out, ignore=ignore)
        else:
            shutil.copy2(src, out)
    return dest


def _pytest(root: Path, *tests: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the named tests of ``root/tests/theory`` in a subprocess that imports ``root/theory``."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    args = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-c", str(root / "pyproject.toml"),
            "--rootdir", str(root), *(f"tests/theory/{t}" for t in tests)]
    return subprocess.run(args, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def _apply(root: Path, mutation: Mutation) -> None:
    path = root / mutation.path
    text = path.read_text()
    assert text.count(mutation.original) == 1, f"{mutation.name}: the original text is not in {mutation.path} once"
    path.write_text(text.replace(mutation.original, mutation.mutated))


@pytest.mark.slow
def test_the_named_tests_pass_on_the_unmutated_copy(tmp_path):
    root = _scratch(tmp_path)
    probe = subprocess.run([sys.executable, "-c", "import theory; print(theory.__file__)"], cwd=root,
                           env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, check=True)
    assert Path(probe.stdout.strip()).resolve().is_relative_to(root.resolve())  # the copy is what runs
    result = _pytest(root, *sorted({m.test for m in MUTATIONS}))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_a_source_mutation_fails_its_named_test(mutation, tmp_path):
    root = _scratch(tmp_path)
    _apply(root, mutation)
    result = _pytest(root, mutation.test)
    assert result.returncode == 1 and "1 failed" in result.stdout, (
        f"{mutation.name} survived {mutation.test}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
