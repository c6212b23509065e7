"""Compile the translation catalogs: every locale/<lang>/LC_MESSAGES/<domain>.po of the project (LOCALE_PATHS) and of
its apps (diagnosis/locale/...) to the .mo file next to it, which Django reads.

`python -m tools.messages` (run by `make run`, `make test` and the Docker builds). polib, pure Python, instead of
Django's compilemessages: that needs GNU gettext's msgfmt, which a fresh machine with only Python does not have.
The .mo files are build output, never committed (.gitignore), so they cannot go stale against their .po.
Like msgfmt, a fuzzy or untranslated entry is left out (it shows in English); tests/tools/test_messages.py and the
catalog tests say when one is there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
# The project's catalogs and each top-level app's: <root>/locale/... and <root>/<app>/locale/...
PATTERNS = ("locale/*/LC_MESSAGES/*.po", "*/locale/*/LC_MESSAGES/*.po")


def catalogs(root: Path = ROOT) -> Iterator[Path]:
    """Every .po file the patterns find, hidden folders (.venv, .git) left out, in a stable order."""
    found = {p for pattern in PATTERNS for p in root.glob(pattern)}
    yield from sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(root).parts))


def compile_catalog(po_path: Path) -> tuple[Path, int]:
    """Write po_path's .mo next to it; the number of translated entries it holds."""
    catalog = polib.pofile(str(po_path), check_for_duplicates=True)  # msgfmt refuses a message given twice
    mo_path = po_path.with_suffix(".mo")
    catalog.save_as_mofile(str(mo_path))
    return mo_path, len(catalog.translated_entries())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to look in (default: this checkout)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing unless it fails")
    args = parser.parse_args(argv)
    for po_path in catalogs(args.root):
        try:
            mo_path, count = compile_catalog(po_path)
        except (OSError, ValueError) as exc:  # polib: OSError for a syntax error, ValueError for a duplicate
            print(f"{po_path}: {exc}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"{mo_path.relative_to(args.root)}: {count} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
