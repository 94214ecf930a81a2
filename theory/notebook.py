"""The derivation notebooks: jupytext percent-format sources (``notebooks/0*.py``), executed here.

The sources are plain Python files whose cells are marked ``# %%`` (code) and ``# %% [markdown]``;
:func:`execute` reads one with jupytext and runs it in a kernel of this interpreter, :func:`to_html`
renders the executed notebook (outputs included) for ``results/notebooks/``, and :func:`finals`
reads the ``FINAL <name>: <srepr>`` lines each notebook prints last (compared with
:data:`theory.bounds.EXPRESSIONS` by the tests).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "darc-theory"


def sources() -> list[Path]:
    """The notebook sources, in order."""
    return sorted(NOTEBOOKS.glob("0*.py"))


@contextmanager
def _kernelspec():
    """A kernelspec that runs this interpreter, visible through JUPYTER_PATH while the block runs."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "kernels" / KERNEL
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + old if old else "")
        try:
            yield KERNEL
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def read(path: str | Path) -> nbformat.NotebookNode:
    """The notebook of a percent-format source (no outputs)."""
    return jupytext.read(path)


def execute(path: str | Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Run every cell (working directory: the notebook's folder); raises if a cell fails."""
    from nbclient import NotebookClient

    path = Path(path)
    nb = read(path)
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        with _kernelspec() as kernel:
            NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                           resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


def to_html(nb: nbformat.NotebookNode) -> str:
    """The executed notebook as a standalone HTML page (outputs included)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def finals(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{name: srepr}`` from the ``FINAL <name>: <srepr>`` lines printed by the last cell."""
    text = "".join(out.get("text", "") for out in nb.cells[-1].get("outputs", []) if out.get("name") == "stdout")
    return dict(line[len("FINAL "):].split(": ", 1) for line in text.splitlines() if line.startswith("FINAL "))
