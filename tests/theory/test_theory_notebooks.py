"""The derivation notebooks: readable sources (jupytext percent format), run clean, end in the library's forms."""

from pathlib import Path

import pytest
import sympy as sp

from theory import bounds as tb
from theory import notebook

ROOT = Path(__file__).resolve().parents[2]
SOURCES = notebook.sources()


def test_there_are_four_percent_format_sources_and_no_generated_copies():
    assert [p.name[:2] for p in SOURCES] == ["01", "02", "03", "04"]
    assert not list((ROOT / "notebooks").glob("*.ipynb")) and not (ROOT / "notebooks/build_notebooks.py").exists()
    for path in SOURCES:
        nb = notebook.read(path)
        assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
        assert {cell.cell_type for cell in nb.cells} == {"markdown", "code"}
        assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_notebook_runs_and_ends_in_the_library_expression(path):
    nb = notebook.execute(path, timeout=300)
    finals = notebook.finals(nb)
    assert finals, "the last cell printed no FINAL expressions"
    for name, srepr in finals.items():
        derived = eval(srepr, vars(sp))  # noqa: S307 - a sympy srepr written by our own notebook
        assert sp.simplify(derived - tb.EXPRESSIONS[name]()) == 0, name
    assert "<html" in notebook.to_html(nb)[:500].lower()
