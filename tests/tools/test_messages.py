"""tools/messages.py: every catalog of the tree compiled to the .mo Django reads, with polib (no GNU gettext), leaving
out what msgfmt leaves out (fuzzy and untranslated entries)."""

from __future__ import annotations

import gettext
import shutil
import subprocess
from pathlib import Path

import polib
import pytest

from tests.needs import need
from tools import messages


def _catalog(path: Path, entries: list[polib.POEntry]) -> Path:
    catalog = polib.POFile()
    catalog.metadata = {
        "Content-Type": "text/plain; charset=UTF-8",
        "Language": "vi",
        "Plural-Forms": "nplurals=1; plural=0;",
    }
    for entry in entries:
        catalog.append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog.save(str(path))
    return path


ENTRIES = [
    polib.POEntry(msgid="Pneumonia", msgstr="Viêm phổi"),
    polib.POEntry(msgid="Normal", msgstr="Bình thường", flags=["fuzzy"]),  # a guess: left out, like msgfmt
    polib.POEntry(msgid="Upload", msgstr=""),  # not translated yet: English shows
    polib.POEntry(msgid="%(n)s study", msgid_plural="%(n)s studies", msgstr_plural={0: "%(n)s ca chụp"}),
    polib.POEntry(msgctxt="verb", msgid="Review", msgstr="Duyệt"),
]


def test_it_compiles_every_catalog_of_the_project_and_its_apps(tmp_path: Path) -> None:
    project = _catalog(tmp_path / "locale/vi/LC_MESSAGES/django.po", ENTRIES)
    app = _catalog(tmp_path / "diagnosis/locale/vi/LC_MESSAGES/djangojs.po", ENTRIES[:1])
    _catalog(tmp_path / ".venv/locale/vi/LC_MESSAGES/django.po", ENTRIES)  # hidden folders are not the project's
    _catalog(tmp_path / "diagnosis/static/locale/vi/LC_MESSAGES/django.po", ENTRIES)  # nor deeper than an app
    assert list(messages.catalogs(tmp_path)) == [app, project]
    assert messages.main(["--root", str(tmp_path), "--quiet"]) == 0
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mo")) == [
        "diagnosis/locale/vi/LC_MESSAGES/djangojs.mo",
        "locale/vi/LC_MESSAGES/django.mo",
    ]
    with project.with_suffix(".mo").open("rb") as mo:
        vi = gettext.GNUTranslations(mo)
    assert vi.gettext("Pneumonia") == "Viêm phổi"
    assert vi.gettext("Normal") == "Normal" and vi.gettext("Upload") == "Upload"
    assert vi.ngettext("%(n)s study", "%(n)s studies", 1) == vi.ngettext("%(n)s study", "%(n)s studies", 5)
    assert vi.ngettext("%(n)s study", "%(n)s studies", 5) == "%(n)s ca chụp"
    assert vi.pgettext("verb", "Review") == "Duyệt"
    assert vi.info()["plural-forms"] == "nplurals=1; plural=0;"


@pytest.mark.parametrize(
    "text",
    [
        'msgid "Pneumonia"\nmsgstrx "Viêm phổi"\n',
        'msgid "Normal"\nmsgstr "Bình thường"\n\nmsgid "Normal"\nmsgstr "x"\n',
    ],
    ids=["syntax", "duplicate"],
)
def test_it_says_which_catalog_is_broken(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    broken = tmp_path / "locale/vi/LC_MESSAGES/django.po"
    broken.parent.mkdir(parents=True)
    broken.write_text(text, encoding="utf-8")
    assert messages.main(["--root", str(tmp_path)]) == 1
    assert str(broken) in capsys.readouterr().err
    assert not broken.with_suffix(".mo").exists()


def test_it_reads_what_gnu_msgfmt_reads(tmp_path: Path) -> None:
    """The same messages as msgfmt's .mo, where GNU gettext is installed to compare with."""
    need(shutil.which("msgfmt") is not None, "GNU gettext's msgfmt (Debian: apt install gettext)")
    po = _catalog(tmp_path / "locale/vi/LC_MESSAGES/django.po", ENTRIES)
    reference = tmp_path / "msgfmt.mo"
    subprocess.run(["msgfmt", "-o", str(reference), str(po)], check=True)
    messages.compile_catalog(po)
    ours, theirs = polib.mofile(str(po.with_suffix(".mo"))), polib.mofile(str(reference))
    assert {(e.msgctxt, e.msgid, e.msgstr, tuple(e.msgstr_plural.items())) for e in ours} == {
        (e.msgctxt, e.msgid, e.msgstr, tuple(e.msgstr_plural.items())) for e in theirs
    }
