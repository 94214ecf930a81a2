"""The derivation notebooks: up to date, committed without outputs, run clean, end in the library's forms."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import sympy as sp
from nbclient import NotebookClient

from theory import bounds as tb

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
KERNEL = "darc-theory-test"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory, monkeypatch_module):
    """A kernelspec that runs this interpreter (works in any fresh venv with ipykernel)."""
    spec_dir = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch_module.setenv("JUPYTER_PATH", str(spec_dir.parent.parent))
    return KERNEL


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_there_are_four_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


def test_notebooks_are_built_from_the_generator_and_have_no_outputs():
    res = subprocess.run([sys.executable, str(ROOT / "notebooks" / "build_notebooks.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            assert cell.cell_type != "code" or (cell.outputs == [] and cell.execution_count is None)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_ends_in_the_library_expression(path, kernel_name):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "".join(out.get("text", "") for out in nb.cells[-1].outputs if out.get("name") == "stdout")
    finals = dict(line[len("FINAL "):].split(": ", 1) for line in text.splitlines() if line.startswith("FINAL "))
    assert finals, "the last cell printed no FINAL expressions"
    for name, srepr in finals.items():
        derived = eval(srepr, vars(sp))  # noqa: S307 - a sympy srepr written by our own notebook
        assert sp.simplify(derived - tb.EXPRESSIONS[name]()) == 0, name
