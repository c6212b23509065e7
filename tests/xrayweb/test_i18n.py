"""Issue 29: the project's i18n wiring (languages, middleware order), the JavaScript catalog at /jsi18n/, and the
catalogs themselves: every string the code marks is in them, and the Vietnamese ones are complete and sound."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tests.needs import need
from tools.messages import catalogs

ROOT = Path(__file__).resolve().parents[2]
# What makemessages reads: templates and the project's Python (-> locale/), the app's Python and JS
# (-> diagnosis/locale/). Tests, tools and the worker library hold no user-facing strings.
SOURCES = ("templates", "xrayweb", "diagnosis", "locale")
DOMAINS = ("django", "djangojs")


def test_the_languages_and_the_middleware_order() -> None:
    assert settings.LANGUAGE_CODE == "en" and [code for code, _ in settings.LANGUAGES] == ["en", "vi"]
    assert settings.USE_I18N and settings.LOCALE_PATHS == [ROOT / "locale"]
    order = settings.MIDDLEWARE.index
    # Django's order for LocaleMiddleware; the clinic's choice needs the user, so it comes after authentication.
    assert (
        order("django.contrib.sessions.middleware.SessionMiddleware")
        < order("django.middleware.locale.LocaleMiddleware")
        < order("django.middleware.common.CommonMiddleware")
    )
    assert order("django.contrib.auth.middleware.AuthenticationMiddleware") < order(
        "diagnosis.locale_middleware.ClinicLocaleMiddleware"
    )


def test_the_javascript_catalog_is_a_same_origin_script_per_language(client: Client) -> None:
    url = reverse("javascript-catalog")
    assert url == "/jsi18n/"
    english = client.get(url, headers={"accept-language": "en"})
    vietnamese = client.get(url, headers={"accept-language": "vi"})
    for response in (english, vietnamese):
        assert response.status_code == 200 and response["Content-Type"] == "text/javascript; charset=utf-8"
        assert b"django.gettext = function" in response.content and b"django.interpolate" in response.content
        assert "no-cache" in response["Cache-Control"] and "Accept-Language" in response["Vary"]
        assert "script-src 'self'" in response["Content-Security-Policy"]
    assert english["Content-Language"] == "en" and vietnamese["Content-Language"] == "vi"
    # One URL for every language: each has its own ETag, so a browser that switched never keeps the other's script.
    assert english["ETag"] != vietnamese["ETag"]
    again = client.get(url, headers={"accept-language": "vi", "if-none-match": vietnamese["ETag"]})
    assert again.status_code == 304
    switched = client.get(url, headers={"accept-language": "en", "if-none-match": vietnamese["ETag"]})
    assert switched.status_code == 200 and switched.content == english.content


# The catalogs.


def _entries(path: Path) -> set[tuple[str, str, str]]:
    """The messages a catalog holds (context, singular, plural), its obsolete ones left out."""
    return {(e.msgctxt or "", e.msgid, e.msgid_plural or "") for e in polib.pofile(str(path)) if not e.obsolete}


def _vi_catalogs(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in catalogs(root) if p.parts[-3] == "vi"}


@pytest.mark.timeout(300)
def test_makemessages_finds_no_string_outside_the_catalogs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """makemessages in a copy of the tree (the real catalogs untouched): the messages it extracts for vi are the
    committed catalogs' messages, no more (a string not marked or not extracted yet) and no fewer (one left over)."""
    need(
        bool(shutil.which("xgettext") and shutil.which("msgmerge")),
        "GNU gettext (xgettext, msgmerge): apt install gettext",
    )
    committed = _vi_catalogs(ROOT)
    assert committed, "no vi catalog: locale/vi/LC_MESSAGES/django.po, diagnosis/locale/vi/LC_MESSAGES/*.po"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    settings.LOCALE_PATHS = [tmp_path / "locale"]  # not the checkout's: its .pot files would be written and removed
    monkeypatch.chdir(tmp_path)
    for domain in DOMAINS:
        call_command("makemessages", locale=["vi"], domain=domain, verbosity=0)
    extracted = _vi_catalogs(tmp_path)
    assert sorted(extracted) == sorted(committed), "catalog files: makemessages makes, the tree holds"
    for name, path in extracted.items():
        found, kept = _entries(path), _entries(committed[name])
        assert not found - kept, f"{name}: strings the code marks that the catalog lacks (run makemessages)"
        assert not kept - found, f"{name}: messages no longer in the code (run makemessages; drop obsolete ones)"


# Placeholders that must survive translation: %(name)s, %s / %d, {name} / {} (str.format).
PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[sdfir]|%[sdfir]|\{[A-Za-z_0-9]*\}")


def placeholders(text: str) -> Counter[str]:
    return Counter(PLACEHOLDER.findall(text.replace("%%", "")))


def problems(path: Path) -> list[str]:
    """What is wrong with one vi catalog: its plural header, and per message an empty or fuzzy translation or
    placeholders that differ from the English."""
    catalog = polib.pofile(str(path))
    found = []
    if catalog.metadata.get("Plural-Forms", "").replace(" ", "") != "nplurals=1;plural=0;":
        found.append(f"Plural-Forms is {catalog.metadata.get('Plural-Forms')!r}, not 'nplurals=1; plural=0;'")
    if catalog.metadata_is_fuzzy:
        found.append("the header is marked fuzzy")
    for entry in (e for e in catalog if not e.obsolete):
        name = repr(entry.msgid[:60])
        if "fuzzy" in entry.flags:
            found.append(f"{name}: fuzzy")
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not all(t.strip() for t in translations):
            found.append(f"{name}: untranslated")
            continue
        english = placeholders(entry.msgid_plural or entry.msgid)
        for text in translations:
            if placeholders(text) != english:
                found.append(
                    f"{name}: placeholders {sorted(placeholders(text))} where the English has {sorted(english)}"
                )
    return found


def test_the_vietnamese_catalogs_are_complete_and_keep_every_placeholder() -> None:
    committed = _vi_catalogs(ROOT)
    expected = {"locale/vi/LC_MESSAGES/django.po", "diagnosis/locale/vi/LC_MESSAGES/django.po",
                "diagnosis/locale/vi/LC_MESSAGES/djangojs.po"}  # fmt: skip
    assert expected <= set(committed), f"missing: {sorted(expected - set(committed))}"
    found = {name: problems(path) for name, path in committed.items()}
    assert found == {name: [] for name in committed}, found


def test_the_catalog_check_finds_each_kind_of_problem(tmp_path: Path) -> None:
    """The check above, on a catalog with one of each fault (so that it can fail), and on a sound one."""
    bad = polib.POFile()
    bad.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    bad.append(polib.POEntry(msgid="Pneumonia", msgstr=""))
    bad.append(polib.POEntry(msgid="Normal", msgstr="Bình thường", flags=["fuzzy"]))
    bad.append(polib.POEntry(msgid="%(count)s studies by %(user)s", msgstr="%(count)s ca chụp"))
    bad.append(polib.POEntry(msgid="{name} was invited", msgstr="{ten} đã được mời"))
    bad.append(polib.POEntry(msgid="%s%% done", msgstr="hoàn tất"))
    bad.append(polib.POEntry(msgid="%(n)s study", msgid_plural="%(n)s studies", msgstr_plural={0: "ca chụp"}))
    bad.save(str(tmp_path / "bad.po"))
    found = problems(tmp_path / "bad.po")
    assert len(found) == 7 and found[0].startswith("Plural-Forms"), found
    faults = [("Pneumonia", "untranslated"), ("Normal", "fuzzy"), ("%(count)s", "placeholders"),
              ("{name}", "placeholders"), ("%s%%", "placeholders"), ("%(n)s study", "placeholders")]  # fmt: skip
    for message, fault in faults:
        assert any(line.startswith(repr(message)[:-1]) and fault in line for line in found), (message, found)
    good = polib.POFile()
    good.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=1; plural=0;"}
    good.append(polib.POEntry(msgid="%(count)s studies by %(user)s", msgstr="%(user)s: %(count)s ca chụp"))
    good.append(polib.POEntry(msgid="%s%% done", msgstr="hoàn tất %s%%"))
    good.append(polib.POEntry(msgid="%(n)s study", msgid_plural="%(n)s studies", msgstr_plural={0: "%(n)s ca chụp"}))
    good.save(str(tmp_path / "good.po"))
    assert problems(tmp_path / "good.po") == []
