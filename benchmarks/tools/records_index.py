"""Regenerate the records' index: the table between ``<!-- records:begin -->`` and ``<!-- records:end -->`` in
``benchmarks/measured/README.md``, one row per dated record folder (date, name, and the first heading of its
README, else its first line, else the files it holds). Prose outside the markers is kept as it is.

    python3 benchmarks/tools/records_index.py            # rewrite the index
    python3 benchmarks/tools/records_index.py --check    # exit 1 if the index is not what this would write

Standard library only (``tests/test_records_index.py`` checks that the committed index is up to date).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MEASURED = Path(__file__).resolve().parents[1] / "measured"
BEGIN, END = "<!-- records:begin -->", "<!-- records:end -->"
#: A record folder: ``YYYY-MM-DD-name``.
RECORD = re.compile(r"^(\d{4}-\d{2}-\d{2})-(.+)$")
FILES_SHOWN = 4


def record_folders(measured: Path) -> list[Path]:
    """The dated record folders under ``measured``, newest date first, names in order within a date."""
    found = [p for p in measured.iterdir() if p.is_dir() and RECORD.match(p.name)]
    by_name = sorted(found, key=lambda p: p.name)
    return sorted(by_name, key=lambda p: RECORD.match(p.name).group(1), reverse=True)


def describe(folder: Path) -> str:
    """The first heading of the folder's README (else its first non-empty line), or the files it holds."""
    readme = folder / "README.md"
    if readme.exists():
        lines = [ln.strip() for ln in readme.read_text(encoding="utf-8").splitlines() if ln.strip()]
        heading = next((ln for ln in lines if ln.startswith("#")), None)
        if heading is not None:
            return heading.lstrip("#").strip()
        if lines:
            return lines[0]
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(f"`{n}`" for n in names[:FILES_SHOWN])
    more = f" and {len(names) - FILES_SHOWN} more" if len(names) > FILES_SHOWN else ""
    return f"(no README) {shown}{more}" if names else "(empty)"


def table(measured: Path) -> str:
    """The index table, one row per record folder."""
    rows = ["| date | record | what |", "|---|---|---|"]
    for folder in record_folders(measured):
        date, name = RECORD.match(folder.name).groups()
        target = f"{folder.name}/README.md" if (folder / "README.md").exists() else f"{folder.name}/"
        what = describe(folder).replace("|", "\\|")
        rows.append(f"| {date} | [{name}]({target}) | {what} |")
    return "\n".join(rows) + "\n"


def render(text: str, measured: Path) -> str:
    """``text`` (the index page) with the table between the markers regenerated."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the index needs the markers {BEGIN} and {END}, in that order")
    return text[: start + len(BEGIN)] + "\n" + table(measured) + text[end:]


def unlisted(text: str, measured: Path) -> list[str]:
    """Record folders that the index page's table does not link to."""
    start, end = text.find(BEGIN), text.find(END)
    listed = text[start:end] if 0 <= start < end else ""
    return [p.name for p in record_folders(measured) if f"]({p.name}/" not in listed]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--measured", type=Path, default=MEASURED, help="the records' folder (default: this repo's)")
    ap.add_argument("--check", action="store_true", help="only check: exit 1 if the index is out of date")
    args = ap.parse_args(argv)
    index = args.measured / "README.md"
    text = index.read_text(encoding="utf-8")
    new = render(text, args.measured)
    if args.check:
        if new != text:
            missing = unlisted(text, args.measured)
            print(f"{index} is out of date" + (f"; not listed: {', '.join(missing)}" if missing else "")
                  + ": run python3 benchmarks/tools/records_index.py", file=sys.stderr)
            return 1
        return 0
    if new != text:
        index.write_text(new, encoding="utf-8")
        print(f"wrote {index} ({len(record_folders(args.measured))} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
