"""benchmarks/tools/records_index.py: the records' index (benchmarks/measured/README.md) lists every dated record
folder, and is exactly what the script generates."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MEASURED = REPO / "benchmarks" / "measured"


def _module():
    spec = importlib.util.spec_from_file_location("records_index", REPO / "benchmarks" / "tools" / "records_index.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ri = _module()


def _copy_records(src: Path, dst: Path) -> Path:
    """A light copy of the records' folder: the index, each record's README and the names of its other entries
    (empty files, folders), which is all the index reads."""
    dst.mkdir()
    shutil.copy(src / "README.md", dst / "README.md")
    for folder in ri.record_folders(src):
        (dst / folder.name).mkdir()
        for entry in folder.iterdir():
            if entry.is_dir():
                (dst / folder.name / entry.name).mkdir()
            elif entry.name == "README.md":
                shutil.copy(entry, dst / folder.name / entry.name)
            else:
                (dst / folder.name / entry.name).touch()
    return dst


def test_the_committed_index_is_what_the_script_generates():
    text = (MEASURED / "README.md").read_text(encoding="utf-8")
    assert ri.render(text, MEASURED) == text, "run: python3 benchmarks/tools/records_index.py"
    assert ri.main(["--check"]) == 0


def test_every_record_folder_is_listed():
    text = (MEASURED / "README.md").read_text(encoding="utf-8")
    folders = ri.record_folders(MEASURED)
    assert len(folders) > 40
    assert ri.unlisted(text, MEASURED) == []
    assert "2026-12-07-default-run-9822c3f" in {p.name for p in folders}


def test_records_hold_data_only():
    code = sorted(str(p.relative_to(MEASURED)) for p in MEASURED.rglob("*") if p.suffix in {".py", ".sh"})
    assert not code, f"scripts belong in benchmarks/studies/ or benchmarks/tools/, not in the records: {code}"


def test_a_folder_missing_from_the_index_is_detected(tmp_path):
    measured = _copy_records(MEASURED, tmp_path / "measured")
    index = measured / "README.md"
    before = index.read_text(encoding="utf-8")
    assert ri.render(before, measured) == before  # the light copy indexes as the real folder does
    new = measured / "2099-01-01-new-record"
    new.mkdir()
    (new / "README.md").write_text("# A new record | with a bar\n\nmore\n", encoding="utf-8")

    assert ri.unlisted(before, measured) == ["2099-01-01-new-record"]
    assert ri.render(before, measured) != before
    assert ri.main(["--measured", str(measured), "--check"]) == 1
    assert ri.main(["--measured", str(measured)]) == 0
    after = index.read_text(encoding="utf-8")
    assert "| 2099-01-01 | [new-record](2099-01-01-new-record/README.md) | A new record \\| with a bar |" in after
    assert ri.unlisted(after, measured) == []
    assert ri.main(["--measured", str(measured), "--check"]) == 0
    # the prose outside the markers is kept
    assert after.split(ri.BEGIN)[0] == before.split(ri.BEGIN)[0]
    assert after.split(ri.END)[1] == before.split(ri.END)[1]


def test_descriptions_without_a_heading_or_a_readme(tmp_path):
    plain = tmp_path / "2001-01-01-plain"
    plain.mkdir()
    (plain / "README.md").write_text("\nfirst line\nsecond\n", encoding="utf-8")
    bare = tmp_path / "2001-01-02-bare"
    bare.mkdir()
    for name in ("a.json", "b.json", "c.log", "d.md", "e.csv"):
        (bare / name).touch()
    (bare / "arms").mkdir()
    (tmp_path / "not-a-record").mkdir()
    assert ri.describe(plain) == "first line"
    assert ri.describe(bare) == "(no README) `a.json`, `arms/`, `b.json`, `c.log` and 2 more"
    assert [p.name for p in ri.record_folders(tmp_path)] == ["2001-01-02-bare", "2001-01-01-plain"]
    table = ri.table(tmp_path)
    assert "| 2001-01-02 | [bare](2001-01-02-bare/) |" in table
    assert "| 2001-01-01 | [plain](2001-01-01-plain/README.md) | first line |" in table


def test_the_markers_are_required(tmp_path):
    with pytest.raises(ValueError, match="markers"):
        ri.render("# no markers\n", tmp_path)
