"""The documentation holds together: every relative link in README.md, CHANGELOG.md and docs/ points to a file
that exists; README.md stays short (a user page) and names no commit hash (run history belongs in CHANGELOG.md)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 260

#: ``[text](target)`` and ``![alt](target)``; the target ends at whitespace (an optional "title" follows) or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*[\"'])?\s*\)")
#: A git commit hash as `git rev-parse --short` writes it: 7 to 40 lowercase hex characters standing alone (also
#: inside a path such as a record folder ``...-default-run-9822c3f``), with at least one digit and at least one
#: letter a-f, so that neither a word such as "decade" nor a number such as 1234567 counts. A 64-character
#: SHA-256 digest is not matched (no word boundary within it).
COMMIT = re.compile(r"(?<![0-9A-Za-z_])(?=[0-9a-f]{0,39}[a-f])(?=[0-9a-f]{0,39}[0-9])[0-9a-f]{7,40}(?![0-9A-Za-z_])")


def _prose(text: str) -> str:
    """``text`` without fenced code blocks (their brackets are code, not links)."""
    return re.sub(r"^(```|~~~).*?^\1[ \t]*$", "", text, flags=re.S | re.M)


def relative_links(text: str) -> list[str]:
    """The link targets of a Markdown page that are files in this repository: no scheme (http, https, mailto,
    ...), no bare ``#anchor``; each with its ``#anchor`` and ``?query`` stripped."""
    found = []
    for target in LINK.findall(_prose(text)):
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if path:
            found.append(path)
    return found


def commit_hashes(text: str) -> list[str]:
    return COMMIT.findall(text)


def test_the_pages_exist():
    assert README.exists() and (ROOT / "CHANGELOG.md").exists()
    assert len(PAGES) > 3, "no pages under docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(page):
    missing = [t for t in relative_links(page.read_text()) if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move detail to docs/"


def test_readme_names_no_commit_hash():
    found = commit_hashes(README.read_text())
    assert not found, f"README.md names commit hashes {found}: run history belongs in CHANGELOG.md"


def test_the_link_and_hash_checks_catch_what_they_should():
    page = ("See [a](docs/a.md#part), [b](<b c.md>), ![fig](f.png \"title\"), [w](https://x.org/a.md), "
            "[m](mailto:a@b.c), [here](#anchor).\n```python\nx = [1](2)\n```\n")
    assert relative_links(page) == ["docs/a.md", "f.png"]
    assert commit_hashes("the run at 9822c3f took 67 min") == ["9822c3f"]
    assert commit_hashes("(at f236769; 43b0c7f's tree, 5e3753b-dirty)") == ["f236769", "43b0c7f", "5e3753b"]
    assert commit_hashes("benchmarks/measured/2026-12-07-default-run-9822c3f/") == ["9822c3f"]
    assert commit_hashes("9822c3f43e22960a766744dbfb5ec576289ae2be") == ["9822c3f43e22960a766744dbfb5ec576289ae2be"]
    for clean in ("defaced decade facade", "1234567 images", "7 451 job-seconds", "2026-12-07",
                  "bfloat16 float32 b64 fp32", "abc1234def" * 8, "0x1f3a5b7c",
                  "results/tables/summary.md", "1e-5 and 2e10"):
        assert not commit_hashes(clean), clean
