"""Set-up files stay consistent: environment.yml pins what pyproject.toml pins; CI calls the README's test command."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins(items):
    out = {}
    for item in items:
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$", item.strip())
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    have = _pins(pip_section)
    assert have == wanted
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert project["requires-python"] == ">=" + python.split("=")[1]


def test_workflow_conda_env_matches_environment_yml():
    """The rules' `conda:` environment pins exactly what environment.yml pins (the package from two up)."""
    def deps(path):
        env = yaml.safe_load((ROOT / path).read_text())
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
        local = [p for p in pip if p.startswith("-e ")]
        return [d for d in env["dependencies"] if isinstance(d, str)], _pins(pip), local

    top, rules = deps("environment.yml"), deps("workflow/envs/darc.yaml")
    assert rules[:2] == top[:2]
    assert top[2] == ["-e ."] and rules[2] == ["-e ../.."]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


def test_darc_does_not_import_theory():
    for path in (ROOT / "darc").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+theory\b", text, re.M), path


def test_public_api_names_resolve_lazily():
    """``darc``'s public names load their submodule on first use; every name in ``__all__`` resolves."""
    import darc

    for name in darc.__all__:
        assert getattr(darc, name) is not None, name
    assert set(darc.__all__) <= set(dir(darc))
    try:
        darc.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_reporting_and_io_import_without_torch():
    """The workflow's table and figure jobs (darc.reporting, darc.io, darc.config) start without torch."""
    code = "import sys, darc.reporting, darc.io, darc.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_materialize_stays_the_function_after_its_submodule_is_imported():
    """``darc.materialize`` names both a submodule and the public function; the function must win."""
    code = "import darc.materialize, darc; from darc import materialize; print(callable(materialize))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "True"
