"""The templates in Vietnamese (issue 29): the main pages of a signed-in member whose browser asks for vi show the
template catalog's Vietnamese (locale/vi/LC_MESSAGES/django.po, compiled here) and not its English; the English
pages keep their wording; numbers written into SVG and CSS keep their dot whatever the locale's separator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polib
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from diagnosis.models import Clinic, Label, Role, Study
from tests import factories

CATALOG = Path(django_settings.BASE_DIR) / "locale" / "vi" / "LC_MESSAGES" / "django.po"

# Per page: Vietnamese that must show (the navigation on every page, then the page's own words) and the English
# it replaces. Checked on the text a reader sees (tags stripped), not on attributes or scripts.
NAVIGATION = (["Tải lên", "Lịch sử", "Danh sách chờ đọc", "Tổng quan", "Đăng xuất"], ["History", "Worklist", "Log out"])
PAGES: dict[str, tuple[list[str], list[str]]] = {
    "/upload/": (["Tải lên phim X-quang ngực", "Phân tích"], ["Upload chest X-rays", "Drop files here", "Analyse"]),
    "/history/": (["Ca chụp của bạn", "Xuất CSV", "Lọc"], ["Your studies", "Export CSV", "Uploaded ("]),
    "/worklist/": (["Danh sách chờ đọc — Clinic A", "Lọc và sắp xếp"], ["Filter and sort", "verification sample"]),
    "/dashboard/": (["Tổng quan — Clinic A", "Số ca chụp theo ngày"], ["Studies per day", "Positive rate per day"]),
    "/studies/{study}/": (["phiếu kết quả bản in", "Mã bệnh nhân", "Phím tắt"], ["printable report", "Keys (?)"]),
    "/studies/{study}/report/": (
        ["Phiếu kết quả X-quang ngực — Clinic A", "In hoặc lưu thành PDF", "Bản đồ nhiệt Grad-CAM"],
        ["Chest X-ray report", "Print or save as PDF", "probability of pneumonia:"],
    ),
    "/people/": (["Nhân sự — Clinic A", "Mời người dùng"], ["Invite someone", "Full name"]),
    "/audit/": (["Nhật ký hoạt động — Clinic A"], ["Audit trail", "Every login"]),
}


@pytest.fixture
def vi_catalog(settings: Any, tmp_path: Path) -> Path:
    """The committed template catalog compiled to a .mo of its own (LOCALE_PATHS pointed at it: the checkout's
    build output, if any, is neither needed nor touched). Changing LOCALE_PATHS resets Django's translation cache."""
    mo = tmp_path / "vi" / "LC_MESSAGES" / "django.mo"
    mo.parent.mkdir(parents=True)
    polib.pofile(str(CATALOG)).save_as_mofile(str(mo))
    settings.LOCALE_PATHS = [tmp_path]
    return mo


@pytest.fixture
def admin_client(clinic_a: Clinic) -> tuple[Client, Study]:
    """A clinic admin of clinic A (every page of the navigation) signed in, and a judged pneumonia study of theirs."""
    user: User = factories.make_member("ada", clinic_a, Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client, factories.judged_study(user, Label.PNEUMONIA, 0.9, patient_ref="P-1", age_years=30)


def visible_text(html: str) -> str:
    """What a reader sees: scripts and tags taken out, whitespace collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def get(client: Client, path: str, language: str) -> str:
    response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("path", list(PAGES))
def test_a_vietnamese_browser_gets_the_pages_in_vietnamese(
    vi_catalog: Path, admin_client: tuple[Client, Study], path: str
) -> None:
    client, study = admin_client
    html = get(client, path.format(study=study.pk), "vi")
    text = visible_text(html)
    assert '<html lang="vi">' in html
    shown, replaced = PAGES[path]
    for words in (NAVIGATION[0], shown):
        missing = [w for w in words if w not in text]
        assert not missing, f"{path}: no {missing}"
    english = [w for w in NAVIGATION[1] + replaced if w in text]
    assert not english, f"{path}: English left: {english}"


@pytest.mark.parametrize("path", ["/upload/", "/studies/{study}/report/"])
def test_an_english_browser_keeps_the_english_wording(
    vi_catalog: Path, admin_client: tuple[Client, Study], path: str
) -> None:
    client, study = admin_client
    html = get(client, path.format(study=study.pk), "en")
    text = visible_text(html)
    assert '<html lang="en">' in html
    assert "History" in text and "Worklist" in text and "Lịch sử" not in text
    assert PAGES[path][1][0] in text


def test_the_login_page_follows_the_browser(vi_catalog: Path, db: None) -> None:
    text = visible_text(get(Client(), "/accounts/login/", "vi"))
    assert "Đăng nhập" in text and "Log in" not in text


def test_dates_take_the_vietnamese_order(vi_catalog: Path, admin_client: tuple[Client, Study]) -> None:
    """A translated date format: day/month/year in vi where English keeps year-month-day."""
    client, study = admin_client
    local = timezone.localtime(study.created)
    assert f"{local:%d/%m/%Y %H:%M}" in visible_text(get(client, "/history/", "vi"))
    assert f"{local:%Y-%m-%d %H:%M}" in visible_text(get(client, "/history/", "en"))


def test_svg_and_css_numbers_keep_their_dot_in_vietnamese(vi_catalog: Path, admin_client: tuple[Client, Study]) -> None:
    """vi writes decimals with a comma (0,9); coordinates and CSS lengths must not: they would not parse."""
    client, study = admin_client
    study_page = get(client, f"/studies/{study.pk}/", "vi")
    widths = re.findall(r'class="prob-fill[^"]*" style="width:([^%"]*)%', study_page)
    assert widths and all("," not in w for w in widths), widths
    dashboard = get(client, "/dashboard/", "vi")
    coordinates = re.findall(r'<rect class="[^"]*" x="([^"]*)" y="([^"]*)" width="([^"]*)" height="([^"]*)"', dashboard)
    assert coordinates and not [c for c in coordinates if any("," in n for n in c)], coordinates[:3]
