"""The README's headline table is generated from the committed points tables (darc.headline): the README
holds what they give, and the block is replaced, not appended to."""

from pathlib import Path

import pytest

from darc.headline import BEGIN, END, current_block, headline_markdown, replace_block

ROOT = Path(__file__).resolve().parents[1]
POINTS = sorted((ROOT / "results" / "tables").glob("*_points.csv"))


def test_the_readme_holds_the_table_the_committed_results_give():
    assert POINTS, "no results/tables/*_points.csv committed"
    readme = (ROOT / "README.md").read_text()
    assert current_block(readme) == headline_markdown(POINTS), (
        "README's headline table is stale: run `python -m darc.headline README.md results/tables/*_points.csv`")


def test_the_table_reads_the_points_and_states_each_verdict():
    table = headline_markdown(POINTS)
    lines = table.splitlines()
    assert lines[0].startswith("| test accuracy % |") and len(lines[0].split("|")) == len(POINTS) + 3
    assert any(line.startswith("| equal-budget reference |") for line in lines)
    assert any(line.startswith('| DARC, "') for line in lines)
    assert "vs DARC" in table and "vs the reference" in table


def test_replacing_the_block_keeps_the_rest_and_refuses_a_text_without_one():
    text = f"intro\n{BEGIN}\nold\n{END}\nafter\n"
    out = replace_block(text, "new\n")
    assert out == f"intro\n{BEGIN}\nnew\n{END}\nafter\n" and replace_block(out, "new\n") == out
    with pytest.raises(ValueError, match="one"):
        replace_block("no markers", "x")
