"""Every page, file and API endpoint, for every kind of caller, from one table.

The world: the demo clinics A (north) and B (river) with a clinician, a reviewer and a clinic admin each,
a deactivated clinician of A, a user with no clinic, and anonymous. The objects (a judged study, a batch,
a user) belong to A; B has a judged study of its own with the same patient reference (another child).
A URL added to the project without a row here fails test_every_url_is_in_the_table. A list or export also says
what it lists: each clinic's own rows appear to those who may see them, and the other clinic's never do.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from diagnosis.management.commands.create_demo_clinics import demo_username
from diagnosis.models import (
    AuditAction,
    AuditEvent,
    Batch,
    Clinic,
    Membership,
    OperatingPoint,
    ResultSend,
    Review,
    Role,
    SendStatus,
    Study,
)
from diagnosis.site import operating_points
from tests import dicoms, factories, images
from tests.factories import make_member, upload_file

CALLERS = [
    "anon",
    "no_clinic",
    "a_deactivated",
    "a_clinician",
    "a_reviewer",
    "a_admin",
    "b_clinician",
    "b_reviewer",
    "b_admin",
]
ROLE_OF = {"clinician": Role.CLINICIAN, "reviewer": Role.REVIEWER, "admin": Role.ADMIN}
RANK = {"clinician": 1, "reviewer": 2, "admin": 3}
# Outside the matrix: Django's own admin (superusers only) and login/logout/password views (public by design).
UNCHECKED_NAMESPACES = {"admin"}
UNCHECKED_NAMES = {
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}


def _expect(page: bool, a: str, b: str, below_role: str = "403", min_role: str = "clinician") -> dict[str, str]:
    """Expected outcome per caller. page: anonymous callers are sent to the login page (else API: 401)."""
    out = {"anon": "login" if page else "401", "a_deactivated": "login" if page else "401", "no_clinic": "403"}
    for caller in CALLERS[3:]:
        clinic, role = caller.split("_")
        allowed = RANK[role] >= RANK[min_role]
        out[caller] = (a if clinic == "a" else b) if allowed else below_role
    return out


def member_page(ok: str = "200") -> dict[str, str]:
    return _expect(True, ok, ok)


def clinic_object(ok: str = "200", min_role: str = "clinician", page: bool = True) -> dict[str, str]:
    """An object of clinic A: clinic B is told it does not exist; too low a role is refused."""
    return _expect(page, ok, "404", min_role=min_role)


def admin_page(ok: str = "200") -> dict[str, str]:
    return _expect(True, ok, ok, min_role="admin")


def public() -> dict[str, str]:
    return dict.fromkeys(CALLERS, "200")


@dataclass(frozen=True)
class Row:
    name: str
    expect: dict[str, str]
    method: str = "get"
    kwargs: dict[str, str] = field(default_factory=dict)  # values name attributes of the World
    data: dict[str, Any] = field(default_factory=dict)
    # A write's effect, as a World method that says whether it happened: asserted for every caller, since a
    # redirect alone does not tell a change from a refused or invalid one.
    effect: str = ""
    body: str = ""  # a raw body: the World method that gives (its Content-Type, its bytes)
    prepare: str = ""  # a World method run before the request (e.g. a site's ground truth for the point rows)
    # A list: the World method that gives each clinic's marker ("a", "b"), which a caller of that clinic must see
    # (when `seen_by` allows: "owner" is the clinician who uploaded the clinic's study, else the least role), and
    # which a caller of the other clinic must never see.
    lists: str = ""
    seen_by: str = "clinician"


STOW_STUDY_UID = "1.2.826.0.1.3680043.8.498.42"
SAME_PATIENT = "P-0042"
ADOPT = {"target_sensitivity": "0.95", "reason": "acceptance set of 120"}
REASON = {"reason": "back to the earlier point"}
ADOPT_PAGE = _expect(True, "302", "302", min_role="admin")
ADOPT_API = _expect(False, "201", "201", min_role="admin")
REVERT_API = _expect(False, "200", "200", min_role="admin")
STUDY = {"study_id": "study"}
CLINIC_LOCALE = {"language": "vi", "time_zone": "Asia/Ho_Chi_Minh"}
TABLE = [
    Row("diagnosis:home", {**dict.fromkeys(CALLERS, "302"), "anon": "302", "a_deactivated": "302"}),
    Row("diagnosis:upload", member_page()),
    Row("diagnosis:upload", member_page("302"), "post", data={"images": "FILE"}, effect="uploaded"),
    Row("diagnosis:history", member_page(), lists="study_ids", seen_by="owner"),
    Row("diagnosis:history_export", member_page(), lists="study_ids", seen_by="owner"),
    Row("diagnosis:worklist", member_page(), lists="study_ids"),
    Row("diagnosis:worklist_export", member_page(), lists="study_ids"),
    Row("diagnosis:dashboard", member_page()),
    Row("diagnosis:study", clinic_object(), kwargs=STUDY),
    Row("diagnosis:study_status", clinic_object(), kwargs=STUDY),
    Row("diagnosis:study_report", clinic_object(), kwargs=STUDY),
    Row("diagnosis:study_file", clinic_object(), kwargs={**STUDY, "kind": "=image"}),
    Row("diagnosis:study_file", clinic_object(), kwargs={**STUDY, "kind": "=thumbnail"}),
    Row("diagnosis:study_file", clinic_object(), kwargs={**STUDY, "kind": "=heatmap"}),
    Row("diagnosis:study_review", clinic_object("302", "reviewer"), "post", STUDY, {"decision": "agree"}, "reviewed"),
    Row("diagnosis:study_resend", clinic_object("302", "admin"), "post", STUDY, effect="resent", prepare="send_failed"),
    Row("diagnosis:audit", admin_page(), lists="study_ids", seen_by="admin"),
    Row("diagnosis:audit_export", admin_page(), lists="study_ids", seen_by="admin"),
    Row("diagnosis:people", admin_page(), lists="usernames", seen_by="admin"),
    Row(
        "diagnosis:person_role",
        clinic_object("302", "admin"),
        "post",
        {"user_id": "member"},
        {"role": "reviewer"},
        "role_changed",
    ),
    Row(
        "diagnosis:person_active",
        clinic_object("302", "admin"),
        "post",
        {"user_id": "member"},
        {"active": "0"},
        "deactivated",
    ),
    Row(
        "diagnosis:person_reset",
        clinic_object("200", "admin"),
        "post",
        {"user_id": "member"},
        effect="access_reset",
    ),
    Row("api:study-list", _expect(False, "200", "200"), lists="study_ids", seen_by="owner"),
    Row("api:study-list", _expect(False, "202", "202"), "post", data={"images": "FILE"}, effect="uploaded"),
    Row("api:study-detail", clinic_object(page=False), kwargs={"pk": "study"}),
    Row("api:study-file", clinic_object(page=False), kwargs={"pk": "study", "kind": "=overlay"}),
    Row(
        "api:study-review",
        clinic_object("200", "reviewer", False),
        "post",
        {"pk": "study"},
        {"decision": "agree"},
        "reviewed",
    ),
    # A batch is its submitter's own: even colleagues are told it does not exist.
    Row("api:batch-detail", {**_expect(False, "404", "404"), "a_clinician": "200"}, kwargs={"pk": "batch"}),
    # STOW-RS stores into the caller's own clinic: any member may, like the API's submission.
    Row("dicomweb:stow", _expect(False, "200", "200"), "post", body="stow_body", effect="uploaded"),
    Row(
        "dicomweb:stow-study",
        _expect(False, "200", "200"),
        "post",
        {"study_uid": f"={STOW_STUDY_UID}"},
        body="stow_body",
        effect="uploaded",
    ),
    # Going live at a site: reviewers read the site's figures and operating point; only its admin changes it.
    Row("diagnosis:site", _expect(True, "200", "200", min_role="reviewer")),
    Row("diagnosis:site_adopt", ADOPT_PAGE, "post", data=ADOPT, effect="adopted", prepare="ground_truth"),
    Row("diagnosis:site_revert", ADOPT_PAGE, "post", data=REASON, effect="reverted", prepare="points_in_force"),
    Row("api:site-performance", _expect(False, "200", "200", min_role="reviewer")),
    Row("api:site-operating-point", _expect(False, "200", "200", min_role="reviewer")),
    Row("api:site-operating-point", ADOPT_API, "post", data=ADOPT, effect="adopted", prepare="ground_truth"),
    Row(
        "api:site-operating-point-revert", REVERT_API, "post", data=REASON, effect="reverted", prepare="points_in_force"
    ),
    # Issue 29: the language switcher (anyone: the cookie; a member's choice is saved too) and the JavaScript strings;
    # the clinic's language and time zone, set by its admin only, in their own clinic.
    Row("set_language", dict.fromkeys(CALLERS, "302"), "post", data={"language": "vi", "next": "/"}),
    Row("javascript-catalog", public()),
    Row("diagnosis:clinic_settings", admin_page()),
    Row("diagnosis:clinic_settings", admin_page("302"), "post", data=CLINIC_LOCALE, effect="clinic_locale_set"),
    Row("api:schema", public()),
    Row("api:docs", public()),
    Row("api:not-found", dict.fromkeys(CALLERS, "404")),  # names nothing, for anyone: JSON, not HTML
]


class World:
    """The demo set-up (`create_demo_clinics`: north is clinic A, river is clinic B) and three more callers."""

    media: Path

    def __init__(self) -> None:
        call_command("create_demo_clinics", password="demo-pass-123", stdout=io.StringIO())
        self.users: dict[str, User | None] = {"anon": None}
        for slug, prefix in (("north", "a"), ("river", "b")):
            for role in ROLE_OF:
                self.users[f"{prefix}_{role}"] = User.objects.get(username=demo_username(slug, role))
        self.users["no_clinic"] = User.objects.create_user("no_clinic", password="x-pass-123")
        deactivated = make_member("a_deactivated", Clinic.objects.get(slug="north"))
        deactivated.is_active = False
        deactivated.save()
        self.users["a_deactivated"] = deactivated
        owner = self.users["a_clinician"]
        assert owner is not None
        self.study = factories.judged_study(owner, patient_ref=SAME_PATIENT)
        b_owner = self.users["b_clinician"]
        assert b_owner is not None
        self.b_study = factories.judged_study(b_owner, patient_ref=SAME_PATIENT)
        self.batch = Batch.objects.create(owner=owner)
        self.member = owner.pk
        self.studies = Study.objects.count()

    # Effects of the writes in the table (the member whose role or activity the admin rows change is a_clinician).
    def uploaded(self) -> bool:
        return Study.objects.count() == self.studies + 1

    def reviewed(self) -> bool:
        return Review.objects.filter(study=self.study).exists()

    def role_changed(self) -> bool:
        return Membership.objects.get(user_id=self.member).role == Role.REVIEWER

    def access_reset(self) -> bool:
        return AuditEvent.objects.filter(action=AuditAction.UNLOCK, target_id=str(self.member)).exists()

    def deactivated(self) -> bool:
        return not User.objects.get(pk=self.member).is_active

    def clinic_locale_set(self) -> bool:
        """The admin's own clinic took the language and zone (which clinic: test_clinic_locale says)."""
        return Clinic.objects.filter(**CLINIC_LOCALE).exists()

    def send_failed(self) -> None:
        """The study's results came by DICOM and their send to the PACS failed for good."""
        ResultSend.objects.create(study=self.study, status=SendStatus.FAILED, reason="refused", attempts=3)

    def resent(self) -> bool:
        return ResultSend.objects.get(study=self.study).status == SendStatus.PENDING

    def ground_truth(self) -> None:
        """Both clinics have an acceptance set large enough to adopt a point from."""
        for owner in (self.users["a_admin"], self.users["b_admin"]):
            assert owner is not None
            factories.separable_site(owner)

    def points_in_force(self) -> None:
        """Both clinics have adopted a point (so that a revert has something to undo)."""
        self.ground_truth()
        for admin in (self.users["a_admin"], self.users["b_admin"]):
            assert admin is not None
            operating_points.adopt(user=admin, target_sensitivity=0.95, reason="first")

    def adopted(self) -> bool:
        return OperatingPoint.objects.filter(reason=ADOPT["reason"]).exists()

    def reverted(self) -> bool:
        return OperatingPoint.objects.filter(retired_at__isnull=False).exists()

    def stow_body(self) -> tuple[str, bytes]:
        return dicoms.stow_body(dicoms.radiograph(images.chest_like(), StudyInstanceUID=STOW_STUDY_UID))

    # What the lists list, per clinic.
    def study_ids(self) -> dict[str, str]:
        return {"a": str(self.study.pk), "b": str(self.b_study.pk)}

    def usernames(self) -> dict[str, str]:
        return {"a": demo_username("north", "clinician"), "b": demo_username("river", "clinician")}

    def resolve(self, kwargs: dict[str, str]) -> dict[str, Any]:
        return {
            k: v[1:] if v.startswith("=") else getattr(self, v).pk if k != "user_id" else self.member
            for k, v in kwargs.items()
        }


def _cases() -> list[Any]:
    return [
        pytest.param(row, caller, id=f"{row.method}-{row.name}-{'-'.join(row.kwargs.values())}-{caller}")
        for row in TABLE
        for caller in CALLERS
    ]


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The World, made once for the module inside a transaction rolled back after its last case: each case runs in
    a savepoint of it (pytest-django's db), so what a write row changed is undone before the next case. Its files
    live in a folder of the module's own."""
    media = tmp_path_factory.mktemp("matrix-media")
    with override_settings(**_storage_in(media)), django_db_blocker.unblock(), transaction.atomic():
        made = World()
        made.media = media
        yield made
        transaction.set_rollback(True)


def _storage_in(media: Path) -> dict[str, Any]:
    default = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": media}}
    return {"MEDIA_ROOT": media, "STORAGES": {**django_settings.STORAGES, "default": default}}


@pytest.fixture
def world_files(world: World, settings: Any) -> None:
    """The case reads and writes the World's files (the autouse _media_in_tmp gave it an empty folder)."""
    for name, value in _storage_in(world.media).items():
        setattr(settings, name, value)


@pytest.mark.django_db
@pytest.mark.parametrize(("row", "caller"), _cases())
def test_matrix(row: Row, caller: str, world: World, world_files: None) -> None:
    client = Client()
    user = world.users[caller]
    if user is not None:
        client.force_login(user)
    if row.prepare:
        getattr(world, row.prepare)()
    url = reverse(row.name, kwargs=world.resolve(row.kwargs))
    data = {k: upload_file() if v == "FILE" else v for k, v in row.data.items()}
    if row.body:
        content_type, body = getattr(world, row.body)()
        response = client.generic(row.method.upper(), url, body, content_type=content_type)
    else:
        response = getattr(client, row.method)(url, data)
    expected = row.expect[caller]
    if expected == "login":
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), response
    elif expected == "302":
        assert response.status_code == 302 and not response["Location"].startswith(reverse("login")), response
    else:
        assert response.status_code == int(expected), (response.status_code, getattr(response, "content", b"")[:300])
    if row.lists and response.status_code == 200:
        _assert_lists_only_its_clinic(row, caller, response, getattr(world, row.lists)())
    if row.effect:
        allowed = expected not in ("login", "401", "403", "404")
        assert getattr(world, row.effect)() == allowed, f"{row.effect} should be {allowed} for {caller}"


def _assert_lists_only_its_clinic(row: Row, caller: str, response: Any, markers: dict[str, str]) -> None:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode()
    clinic, _, role = caller.partition("_")
    assert clinic in markers, f"{caller} got a list ({row.name})"
    other = markers["b" if clinic == "a" else "a"]
    assert other not in text, f"{row.name} shows {caller} the other clinic's {other}"
    sees = role == "clinician" if row.seen_by == "owner" else RANK[role] >= RANK[row.seen_by]
    assert (markers[clinic] in text) == sees, (
        f"{row.name}: {caller} should {'' if sees else 'not '}see {markers[clinic]}"
    )


def _named_urls(patterns: list[Any], namespace: str = "") -> set[str]:
    names: set[str] = set()
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace in UNCHECKED_NAMESPACES:
                continue
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            names |= _named_urls(p.url_patterns, ns)
        elif isinstance(p, URLPattern):
            assert p.name, f"unnamed URL pattern {p.pattern} cannot be checked by the matrix"
            names.add(namespace + p.name)
    return names


def test_every_url_is_in_the_table() -> None:
    names = {
        n
        for n in _named_urls(get_resolver().url_patterns)
        if n.split(":")[0] not in UNCHECKED_NAMESPACES and n not in UNCHECKED_NAMES
    }
    missing = names - {row.name for row in TABLE}
    assert not missing, f"add these URLs to the permission matrix: {sorted(missing)}"


def test_every_row_names_every_caller() -> None:
    for row in TABLE:
        assert set(row.expect) == set(CALLERS), row.name
